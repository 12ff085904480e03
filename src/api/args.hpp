// args.hpp: reading the SQL API's arguments: NULL-aware, and bounded - every
// text and array a caller hands pg_foreman has a limit that its error names.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

namespace foreman::api {

// Bounds on what a caller may hand the API: every text and array argument
// is bounded, and the error names the limit.
constexpr int kMaxTextArgBytes = 8192;        // any text argument without a bound of its own
constexpr int kMaxJobNameBytes = 63;
constexpr int kMaxScheduleBytes = 1024;
constexpr int kMaxCommandBytes = 1024 * 1024;
constexpr int kMaxFilterBytes = 65536;
constexpr int kMaxArrayElements = 256;

// Argument helpers: NULL-aware getters that raise 22004 (null value not
// allowed) with the parameter's name, and 54000 (program limit exceeded)
// for text longer than max_bytes.
char *required_text_arg(FunctionCallInfo fcinfo, int n, const char *name, int max_bytes = kMaxTextArgBytes);
char *optional_text_arg(FunctionCallInfo fcinfo, int n, const char *name, int max_bytes = kMaxTextArgBytes);

// Raises 22008 for a timestamp a schedule cannot use: infinite, or outside
// the years 1900 to 9999 (fire times are computed from it).
void check_schedule_timestamp(TimestampTz ts, const char *name);

} // namespace foreman::api
