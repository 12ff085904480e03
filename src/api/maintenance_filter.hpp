// maintenance_filter.hpp: the `filter` of expire_stale and purge - a
// condition on the target's own columns, checked before it is ever placed in
// a statement.
#pragma once

#include "pg/guard.hpp"

namespace foreman::api {

// Runs stmt; a PostgreSQL error it raises is re-raised as it is, without its
// position (which would point into our statement, not the filter) and with
// the filter named in its context.
#define FILTER_TRY(stmt) reraise_filter_error(pg::capture_pg_error([&]() { stmt; }))
void reraise_filter_error(ErrorData *edata); // nothing for nullptr

// Raises "invalid filter: ..." (with the SQLSTATE of what was wrong) unless
// filter is a boolean condition on the target's columns: no ";", balanced
// parentheses, no subqueries, no volatile functions. check_sql is the
// statement that analyses it (SELECT ... FROM target WHERE (filter)).
void check_filter(const char *filter, const char *check_sql);

// Plans check_sql once with the caller's rights (column privileges, errors
// only planning finds); nothing for NULL.
void check_filter_as_caller(const char *check_sql);

} // namespace foreman::api
