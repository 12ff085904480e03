// maintenance_filter.hpp: the `filter` of expire_stale and purge - a
// condition on the target's own columns, checked before it is ever placed in
// a statement.
#pragma once

#include "pg/postgres.hpp"

namespace foreman::api {

// Re-raises a PostgreSQL error met while reading the filter as "invalid
// filter: ...": its position would point into our statement, not the filter.
#define FILTER_TRY(stmt)                                                                                       \
	do {                                                                                                       \
		MemoryContext filter_context_ = CurrentMemoryContext;                                                  \
		ErrorData *volatile filter_error_ = nullptr;                                                           \
		PG_TRY();                                                                                              \
		{                                                                                                      \
			stmt;                                                                                              \
		}                                                                                                      \
		PG_CATCH();                                                                                            \
		{                                                                                                      \
			MemoryContextSwitchTo(filter_context_);                                                            \
			filter_error_ = CopyErrorData();                                                                   \
			FlushErrorState();                                                                                 \
		}                                                                                                      \
		PG_END_TRY();                                                                                          \
		if (filter_error_)                                                                                     \
			ereport(ERROR, (errcode(filter_error_->sqlerrcode), errmsg("invalid filter: %s", filter_error_->message), \
			                filter_error_->detail ? errdetail("%s", filter_error_->detail) : 0,                    \
			                filter_error_->hint ? errhint("%s", filter_error_->hint) : 0));                       \
	} while (0)

// Raises "invalid filter: ..." (with the SQLSTATE of what was wrong) unless
// filter is a boolean condition on the target's columns: no ";", balanced
// parentheses, no subqueries, no volatile functions. check_sql is the
// statement that analyses it (SELECT ... FROM target WHERE (filter)).
void check_filter(const char *filter, const char *check_sql);

// Plans check_sql once with the caller's rights (column privileges, errors
// only planning finds); nothing for NULL.
void check_filter_as_caller(const char *check_sql);

} // namespace foreman::api
