// args.cpp: bounded argument readers of the SQL API.
#include "api/args.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace foreman::api {

char *
optional_text_arg(FunctionCallInfo fcinfo, int n, const char *name, int max_bytes)
{
	if (PG_ARGISNULL(n))
		return nullptr;
	text *t = PG_GETARG_TEXT_PP(n);
	if (VARSIZE_ANY_EXHDR(t) > (Size)max_bytes)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("%s is too long", name),
		                errdetail("It has %zu bytes; the limit is %d.", (size_t)VARSIZE_ANY_EXHDR(t), max_bytes)));
	return text_to_cstring(t);
}

char *
required_text_arg(FunctionCallInfo fcinfo, int n, const char *name, int max_bytes)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name)));
	return optional_text_arg(fcinfo, n, name, max_bytes);
}

void
check_schedule_timestamp(TimestampTz ts, const char *name)
{
	// 1900-01-01 and 10000-01-01, as PostgreSQL timestamps (microseconds
	// since 2000-01-01): far enough from the edges of the type that adding
	// any allowed period can never overflow.
	constexpr TimestampTz kLowest = -INT64CONST(3155673600000000);
	constexpr TimestampTz kHighest = INT64CONST(252423993600000000);
	if (TIMESTAMP_NOT_FINITE(ts) || ts < kLowest || ts >= kHighest)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("%s is out of range", name),
		                errdetail("A schedule's timestamps must be finite and between the years 1900 and 9999.")));
}

} // namespace foreman::api
