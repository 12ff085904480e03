// guard.hpp: the two-way error boundary between PostgreSQL and C++.
//
// PostgreSQL reports errors with longjmp; C++ unwinds with exceptions. Neither
// may cross the other:
//
//  * cpp_guard(f): wraps every C++ body that PostgreSQL calls (fmgr function,
//    bgworker main, hook). C++ exceptions are caught, their SQLSTATE, message,
//    detail and hint copied into static buffers, and ereport(ERROR) is raised
//    only after the catch block has been left (so no exception object is
//    abandoned by a longjmp).
//
//  * pg_guard(f): wraps a PostgreSQL call made while C++ objects with
//    destructors are alive. A PostgreSQL ERROR is caught, copied, flushed,
//    and rethrown as pg::PgError, which keeps the SQLSTATE; the stack unwinds
//    normally and cpp_guard re-raises it faithfully.
//
//  * capture_pg_error(f): the one primitive that catches a PostgreSQL ERROR
//    (PG_TRY appears nowhere else in pg_foreman). pg_guard is built on it;
//    PostgreSQL-side code uses it directly to clean up and re-raise
//    (reraise_pg_error), or to keep an error as a job's outcome.
//
// Inside f of pg_guard and capture_pg_error there must be no C++ object with
// a destructor and no throw: it is PostgreSQL-side code.
#pragma once

#include "pg/postgres.hpp"

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace foreman::pg {

// A PostgreSQL ERROR carried through C++ code.
class PgError : public std::exception {
public:
	explicit PgError(const ErrorData *edata);

	const char *what() const noexcept override { return message_.c_str(); }
	int sqlerrcode() const noexcept { return sqlerrcode_; }
	const std::string &detail() const noexcept { return detail_; }
	const std::string &hint() const noexcept { return hint_; }
	const std::string &context() const noexcept { return context_; }

private:
	int sqlerrcode_;
	std::string message_, detail_, hint_, context_;
};

// Copies the current exception into the pending-error buffers; returns nothing
// and never throws. Called from the catch blocks of cpp_guard only.
void capture_current_exception(const char *where) noexcept;

// Raises the error captured by capture_current_exception. Never returns.
[[noreturn]] void rethrow_captured_error();

template <typename Func>
auto
cpp_guard(const char *where, Func &&func) -> decltype(func())
{
	using Result = decltype(func());
	// Lives outside the try so that no C++ frame is active when ereport runs.
	bool failed = false;
	if constexpr (std::is_void_v<Result>) {
		try {
			func();
		} catch (...) {
			capture_current_exception(where);
			failed = true;
		}
		if (failed)
			rethrow_captured_error();
	} else {
		try {
			return func();
		} catch (...) {
			capture_current_exception(where);
			failed = true;
		}
		rethrow_captured_error();
	}
}

// Throws PgError built from the ErrorData that pg_guard caught.
[[noreturn]] void throw_pg_error(ErrorData *edata);

// capture_pg_error(func): the one place a PostgreSQL ERROR is caught. func is
// PostgreSQL-side code (no C++ object with a destructor, no throw). On ERROR,
// PG_CATCH has restored PG_exception_stack and error_context_stack; this
// restores the memory context the caller was in, copies the error there and
// flushes the error state. Returns the copy, or nullptr when func returned.
// The caller re-raises it (reraise_pg_error), throws it into C++ (pg_guard),
// or keeps it as an outcome (a job's error).
template <typename Func>
ErrorData *
capture_pg_error(Func &&func)
{
	MemoryContext volatile context = CurrentMemoryContext;
	ErrorData *volatile edata = nullptr;
	PG_TRY();
	{
		func();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	return edata;
}

// Re-raises a captured error exactly as it was (SQLSTATE, message, detail,
// hint, position) - a cancel stays a cancel - with `context` added as one
// more line of its CONTEXT when given. Never returns.
[[noreturn]] void reraise_pg_error(ErrorData *edata, const char *context = nullptr);

template <typename Func>
auto
pg_guard(Func &&func) -> decltype(func())
{
	using Result = decltype(func());
	if constexpr (std::is_void_v<Result>) {
		if (ErrorData *edata = capture_pg_error(func))
			throw_pg_error(edata);
	} else {
		static_assert(std::is_trivially_copyable_v<Result>, "pg_guard returns PostgreSQL values (Datum, pointers, scalars)");
		Result result{};
		if (ErrorData *edata = capture_pg_error([&]() { result = func(); }))
			throw_pg_error(edata);
		return result;
	}
}

} // namespace foreman::pg

// Declares an SQL-callable function whose body is C++ run under cpp_guard:
//
//   FOREMAN_FUNCTION(foreman_schedule) { ... return Datum; }
#define FOREMAN_FUNCTION(name)                                                                     \
	extern "C" {                                                                                   \
	PG_FUNCTION_INFO_V1(name);                                                                     \
	}                                                                                              \
	static Datum name##_body(FunctionCallInfo fcinfo);                                             \
	extern "C" Datum name(PG_FUNCTION_ARGS)                                                        \
	{                                                                                              \
		return foreman::pg::cpp_guard(#name, [fcinfo]() { return name##_body(fcinfo); });          \
	}                                                                                              \
	static Datum name##_body([[maybe_unused]] FunctionCallInfo fcinfo)
