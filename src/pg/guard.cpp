// guard.cpp: the out-of-line halves of the error boundary.
#include "pg/guard.hpp"
#include "core/error.hpp"

#include <cstring>
#include <new>

namespace foreman::pg {

namespace {

// The error captured in a catch block, waiting to be raised outside it. Static
// buffers: copying must not allocate (an out-of-memory longjmp from inside a
// catch block would abandon the exception object).
struct CapturedError {
	int sqlerrcode;
	char message[2048];
	char detail[1024];
	char hint[512];
	char context[1024];
};

CapturedError captured;

void
copy_text(char *dst, std::size_t size, const char *src) noexcept
{
	if (!src)
		src = "";
	std::strncpy(dst, src, size - 1);
	dst[size - 1] = '\0';
}

int
sqlstate_from_text(const char *s) noexcept
{
	return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

} // namespace

PgError::PgError(const ErrorData *edata)
    : sqlerrcode_(edata->sqlerrcode), message_(edata->message ? edata->message : ""),
      detail_(edata->detail ? edata->detail : ""), hint_(edata->hint ? edata->hint : ""),
      context_(edata->context ? edata->context : "")
{
}

void
throw_pg_error(ErrorData *edata)
{
	// Copy into C++ memory first, then free the palloc'd copy.
	PgError error(edata);
	FreeErrorData(edata);
	throw error;
}

void
reraise_pg_error(ErrorData *edata, const char *context)
{
	if (context)
		edata->context = edata->context ? psprintf("%s\n%s", edata->context, context) : pstrdup(context);
	ReThrowError(edata);
}

void
capture_current_exception(const char *where) noexcept
{
	captured.detail[0] = captured.hint[0] = captured.context[0] = '\0';
	try {
		throw;
	} catch (const PgError &e) {
		captured.sqlerrcode = e.sqlerrcode();
		copy_text(captured.message, sizeof captured.message, e.what());
		copy_text(captured.detail, sizeof captured.detail, e.detail().c_str());
		copy_text(captured.hint, sizeof captured.hint, e.hint().c_str());
		copy_text(captured.context, sizeof captured.context, e.context().c_str());
	} catch (const core::Error &e) {
		captured.sqlerrcode = sqlstate_from_text(e.sqlstate());
		copy_text(captured.message, sizeof captured.message, e.what());
		copy_text(captured.detail, sizeof captured.detail, e.detail().c_str());
		copy_text(captured.hint, sizeof captured.hint, e.hint().c_str());
	} catch (const std::bad_alloc &) {
		captured.sqlerrcode = ERRCODE_OUT_OF_MEMORY;
		copy_text(captured.message, sizeof captured.message, "out of memory");
		copy_text(captured.detail, sizeof captured.detail, where);
	} catch (const std::exception &e) {
		captured.sqlerrcode = ERRCODE_INTERNAL_ERROR;
		copy_text(captured.message, sizeof captured.message, e.what());
		copy_text(captured.detail, sizeof captured.detail, where);
	} catch (...) {
		captured.sqlerrcode = ERRCODE_INTERNAL_ERROR;
		copy_text(captured.message, sizeof captured.message, "unknown C++ exception");
		copy_text(captured.detail, sizeof captured.detail, where);
	}
}

void
rethrow_captured_error()
{
	ereport(ERROR, (errcode(captured.sqlerrcode), errmsg_internal("%s", captured.message),
	                captured.detail[0] ? errdetail_internal("%s", captured.detail) : 0,
	                captured.hint[0] ? errhint("%s", captured.hint) : 0,
	                captured.context[0] ? errcontext("%s", captured.context) : 0));
	pg_unreachable();
}

} // namespace foreman::pg
