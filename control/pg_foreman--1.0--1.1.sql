-- pg_foreman 1.0 -> 1.1. Every catalog change of release 1.1 is here; a
-- fresh CREATE EXTENSION installs 1.0 and applies this script, so an updated
-- 1.0 and a fresh 1.1 are the same catalog by construction (and the update
-- test compares them).

\echo Use "ALTER EXTENSION pg_foreman UPDATE TO '1.1'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Multi-tenant safety.

-- A bounded run time for jobs of roles that are not foreman_admin: tiers are
-- shared, and one role's long job must not hold another role's for long.
-- NULL: no bound. Jobs of superusers and foreman_admin members are not cut.
ALTER TABLE foreman.tier ADD COLUMN max_user_runtime interval;
ALTER TABLE foreman.tier ADD CONSTRAINT tier_max_user_runtime_valid
    CHECK (max_user_runtime IS NULL OR max_user_runtime > interval '0');
COMMENT ON COLUMN foreman.tier.max_user_runtime IS
    'longest run of a job whose owner is not foreman_admin (NULL: unbounded); the run is then timed_out';
UPDATE foreman.tier SET max_user_runtime = interval '30 seconds' WHERE name = 'fast';
UPDATE foreman.tier SET max_user_runtime = interval '10 minutes' WHERE name = 'slow';

-- How a run ended is recorded at once; the job's summary (last outcome,
-- failure count, retry, automatic disabling) follows in the same transaction,
-- unless the job's owner holds the job's row in an open transaction: then the
-- summary waits (summary_pending) and the tier's other jobs go on.
ALTER TABLE foreman.job_run ADD COLUMN summary_pending boolean NOT NULL DEFAULT false;
CREATE INDEX job_run_summary_pending_idx ON foreman.job_run (tier_id) WHERE summary_pending;

DROP FUNCTION foreman.create_tier(text, interval, integer, interval);
CREATE FUNCTION foreman.create_tier(name text, tick interval, concurrency integer DEFAULT 1,
                                    default_timeout interval DEFAULT NULL,
                                    max_user_runtime interval DEFAULT '5 minutes')
RETURNS integer
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_create_tier';

DROP FUNCTION foreman.alter_tier(text, interval, integer, boolean, interval);
CREATE FUNCTION foreman.alter_tier(name text, tick interval DEFAULT NULL,
                                   concurrency integer DEFAULT NULL, enabled boolean DEFAULT NULL,
                                   default_timeout interval DEFAULT NULL,
                                   max_user_runtime interval DEFAULT NULL)
RETURNS void
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_alter_tier';
COMMENT ON FUNCTION foreman.alter_tier IS 'change a tier; NULL leaves a setting as it is, a zero interval clears default_timeout or max_user_runtime';

REVOKE ALL ON FUNCTION foreman.create_tier, foreman.alter_tier FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman.create_tier, foreman.alter_tier TO foreman_admin;

-- The internal functions: nobody but the extension's own callers. The status
-- functions hide another role's job themselves, exactly as the view does;
-- tier_status is for foreman_user and pg_monitor members.
REVOKE ALL ON FUNCTION foreman._coordinators(), foreman._tier_stalls(), foreman._executors(),
    foreman._tiers_changed(), foreman._report_progress(text), foreman._report_run_totals(bigint, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman._coordinators(), foreman._tier_stalls(), foreman._executors()
    TO foreman_user, pg_monitor;
GRANT EXECUTE ON FUNCTION foreman._report_progress(text), foreman._report_run_totals(bigint, integer)
    TO foreman_user;

-- The leadership lock moved to objsubid 3, which no SQL function can take.
CREATE OR REPLACE VIEW foreman.tier_status WITH (security_invoker = true) AS
SELECT t.name AS tier, pg_catalog.current_database() AS database, c.pid,
       coalesce(c.leader, false) AS leader,
       coalesce(c.state,
                CASE WHEN pg_catalog.pg_is_in_recovery() THEN 'not running: server is in recovery'
                     WHEN NOT t.enabled THEN 'not running: tier disabled'
                     ELSE 'not running' END) AS state,
       -- another role's job: neither its name nor its progress is shown
       -- (_coordinators() hides them; decided from shared memory, so this view
       -- answers while foreman.job is locked)
       c.current_job, c.progress,
       c.job_started_at, c.heartbeat_at,
       pg_catalog.clock_timestamp() - c.heartbeat_at AS heartbeat_age,
       t.tick, t.concurrency, t.enabled, t.default_timeout,
       1179798862::bigint AS lock_classid, t.tier_id::bigint AS lock_objid,
       format('pg_locks: locktype = advisory, classid = 1179798862, objid = %s, objsubid = 3', t.tier_id) AS lock_key,
       c.runs, c.started_at,
       coalesce(st.stalls, 0) AS stalls, st.last_stall_at, st.last_stall_pid,
       (SELECT count(*) FROM foreman._executors() e WHERE e.tier_id = t.tier_id) AS executors,
       t.max_user_runtime
  FROM foreman.tier t
  LEFT JOIN foreman._coordinators() c USING (tier_id)
  LEFT JOIN foreman._tier_stalls() st USING (tier_id)
 ORDER BY t.tier_id, c.leader DESC NULLS LAST, c.pid;
REVOKE ALL ON foreman.tier_status FROM PUBLIC;
GRANT SELECT ON foreman.tier_status TO foreman_user, pg_monitor;

-- ---------------------------------------------------------------------------
-- Backup and restore: owners by name.

-- Role OIDs differ between servers: each table that names an owner also
-- keeps the owner's name (refreshed when the job is changed and at every
-- run), and a restore maps the name back to a role of the target server.
ALTER TABLE foreman.job ADD COLUMN owner_name name;
ALTER TABLE foreman.job_run ADD COLUMN owner_name name;
ALTER TABLE foreman.maintenance ADD COLUMN owner_name name;
UPDATE foreman.job j SET owner_name = r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = j.owner;
UPDATE foreman.job_run j SET owner_name = r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = j.owner;
UPDATE foreman.maintenance m SET owner_name = r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = m.owner;
COMMENT ON COLUMN foreman.job.owner_name IS 'the owner''s role name, for pg_dump: a restore maps it to a role of the target';

-- ---------------------------------------------------------------------------
-- Schedules: preview (issue 14)

-- A schedule's fire times before any job has it: read as foreman.schedule()
-- reads it (same errors), anchored at start_at like a new job without jitter.
CREATE FUNCTION foreman.preview(schedule text, n integer DEFAULT 5, time_zone text DEFAULT NULL,
                                start_at timestamptz DEFAULT now())
RETURNS SETOF timestamptz
LANGUAGE C CALLED ON NULL INPUT STABLE
AS 'MODULE_PATHNAME', 'foreman_preview';
COMMENT ON FUNCTION foreman.preview IS 'the first n fire times of a schedule from start_at on, to check it before any job has it';
REVOKE ALL ON FUNCTION foreman.preview FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman.preview TO foreman_user;

-- ---- end of Schedules: preview (issue 14) ----
