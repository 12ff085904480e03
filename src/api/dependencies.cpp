// dependencies.cpp: job dependencies in the SQL API.
#include "api/dependencies.hpp"
#include "api/access.hpp"
#include "api/hooks.hpp"
#include "pg/roles.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
}

namespace foreman::api {

namespace {

// The jobs that run after job_id, directly.
uint64
select_dependents(int64 job_id)
{
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(job_id)};
	return spi_exec("SELECT j.job_id, j.job_name, j.owner, j.tier_id FROM foreman.job_dependency d"
	                "  JOIN foreman.job j ON j.job_id = d.job_id WHERE d.upstream_id = $1 ORDER BY j.job_name",
	                1, types, values, nullptr, false);
}

void
refuse_with_dependents(const char *job_name, Oid caller, uint64 n, DependentAction action)
{
	StringInfoData names;
	initStringInfo(&names);
	int hidden = 0;
	for (uint64 i = 0; i < n; i++) {
		bool isnull;
		Oid owner = DatumGetObjectId(spi_get(i, 3, &isnull));
		if (!pg::may_manage(caller, owner)) {
			hidden++;
			continue;
		}
		appendStringInfo(&names, "%s\"%s\"", names.len ? ", " : "", spi_get_text(i, 2));
	}
	if (hidden > 0)
		appendStringInfo(&names, "%s%d job%s of other roles", names.len ? ", and " : "", hidden, hidden > 1 ? "s" : "");
	ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
	                errmsg("cannot %s job \"%s\" because other jobs run after it",
	                       action == DependentAction::Remove ? "unschedule" : "disable", job_name),
	                errdetail("Jobs that run after it: %s.", names.data),
	                errhint("Pass cascade => true to %s them too.",
	                        action == DependentAction::Remove ? "unschedule" : "disable")));
}

} // namespace

int64 *
resolve_upstreams(ArrayType *names, Oid owner, const char *job_name, int *n)
{
	if (ARR_NDIM(names) > 1 || ArrayGetNItems(ARR_NDIM(names), ARR_DIMS(names)) > kMaxArrayElements)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("after has too many elements"),
		                errdetail("A job may run after at most %d jobs, in one dimension.", kMaxArrayElements)));
	Datum *elems;
	bool *nulls;
	deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	int64 *ids = static_cast<int64 *>(palloc(sizeof(int64) * Max(*n, 1)));
	int kept = 0;
	for (int i = 0; i < *n; i++) {
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("after must not contain null")));
		char *name = TextDatumGetCString(elems[i]);
		if (strcmp(name, job_name) == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("dependency cycle: job \"%s\" cannot run after itself", job_name)));
		// The owner's view of jobs: only a job the owner may see.
		int64 id = require_job(name, owner, JobLock::None).job_id;
		bool seen = false;
		for (int k = 0; k < kept; k++)
			seen |= ids[k] == id;
		if (!seen)
			ids[kept++] = id;
	}
	*n = kept;
	return ids;
}

void
write_dependencies(int64 job_id, const int64 *upstreams, int n)
{
	Oid types[2] = {INT8OID, INT8OID};
	Datum values[2] = {Int64GetDatum(job_id), (Datum)0};
	spi_exec("DELETE FROM foreman.job_dependency WHERE job_id = $1", 1, types, values, nullptr, false);
	for (int i = 0; i < n; i++) {
		values[1] = Int64GetDatum(upstreams[i]);
		spi_exec("INSERT INTO foreman.job_dependency (job_id, upstream_id) VALUES ($1, $2)", 2, types, values,
		         nullptr, false);
	}
	// A cycle closes when the job is among its own ancestors.
	spi_exec("WITH RECURSIVE up(job_id, path) AS ("
	         "  SELECT d.upstream_id, ARRAY[d.job_id, d.upstream_id] FROM foreman.job_dependency d WHERE d.job_id = $1"
	         "  UNION ALL"
	         "  SELECT d.upstream_id, up.path || d.upstream_id FROM foreman.job_dependency d JOIN up ON d.job_id = up.job_id"
	         "   WHERE up.job_id <> $1 AND NOT d.upstream_id = ANY (up.path[2:]))"
	         "SELECT (SELECT string_agg(format('\"%s\"', j.job_name), ' -> ' ORDER BY p.o)"
	         "          FROM unnest(up.path) WITH ORDINALITY AS p(id, o) JOIN foreman.job j ON j.job_id = p.id)"
	         "  FROM up WHERE up.job_id = $1 LIMIT 1",
	         1, types, values, nullptr, false);
	if (SPI_processed > 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("dependency cycle: %s", spi_get_text(0, 1)),
		                errdetail("Each job would wait for itself."),
		                errhint("Remove one of these dependencies with foreman.alter_job(..., after => ...).")));
}

int64
count_upstreams(int64 job_id)
{
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(job_id)};
	spi_exec("SELECT count(*) FROM foreman.job_dependency WHERE job_id = $1", 1, types, values, nullptr, false);
	bool isnull;
	return DatumGetInt64(spi_get(0, 1, &isnull));
}

void
handle_dependents(int64 job_id, const char *job_name, Oid caller, bool cascade, DependentAction action)
{
	uint64 n = select_dependents(job_id);
	if (n == 0)
		return;
	if (!cascade)
		refuse_with_dependents(job_name, caller, n, action);
	// Copied first: each step below runs statements of its own.
	int64 *ids = static_cast<int64 *>(palloc(sizeof(int64) * n));
	char **names = static_cast<char **>(palloc(sizeof(char *) * n));
	int32 *tiers = static_cast<int32 *>(palloc(sizeof(int32) * n));
	for (uint64 i = 0; i < n; i++) {
		bool isnull;
		ids[i] = DatumGetInt64(spi_get(i, 1, &isnull));
		names[i] = spi_get_text(i, 2);
		if (!pg::may_manage(caller, DatumGetObjectId(spi_get(i, 3, &isnull))))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("cannot cascade to a job of another role that runs after job \"%s\"", job_name)));
		tiers[i] = DatumGetInt32(spi_get(i, 4, &isnull));
	}
	for (uint64 i = 0; i < n; i++) {
		CHECK_FOR_INTERRUPTS();
		handle_dependents(ids[i], names[i], caller, true, action);
		Oid types[1] = {INT8OID};
		Datum values[1] = {Int64GetDatum(ids[i])};
		if (action == DependentAction::Remove)
			spi_exec("DELETE FROM foreman.job WHERE job_id = $1", 1, types, values, nullptr, false);
		else
			spi_exec("UPDATE foreman.job SET enabled = false, next_run_at = NULL, revision = revision + 1,"
			         " updated_at = now() WHERE job_id = $1",
			         1, types, values, nullptr, false);
		wake_tier_at_commit(tiers[i]);
		ereport(NOTICE, (errmsg("%s job \"%s\", which runs after job \"%s\"",
		                        action == DependentAction::Remove ? "unscheduled" : "disabled", names[i], job_name)));
	}
}

void
notice_upstreams(int64 job_id, const char *job_name)
{
	Oid types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(job_id)};
	spi_exec("SELECT string_agg(format('\"%s\"', u.job_name), ', ' ORDER BY u.job_name), min(j.after_condition)"
	         "  FROM foreman.job_dependency d JOIN foreman.job u ON u.job_id = d.upstream_id"
	         "  JOIN foreman.job j ON j.job_id = d.job_id WHERE d.job_id = $1",
	         1, types, values, nullptr, true);
	char *upstreams = spi_get_text(0, 1);
	if (upstreams)
		ereport(NOTICE, (errmsg("job \"%s\" runs after %s (on their %s)", job_name, upstreams, spi_get_text(0, 2))));
}

} // namespace foreman::api
