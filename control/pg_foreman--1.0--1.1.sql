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
REVOKE ALL ON FUNCTION foreman._coordinators(), foreman._tier_stalls(),
    foreman._tiers_changed(), foreman._report_progress(text), foreman._report_run_totals(bigint, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman._coordinators(), foreman._tier_stalls() TO foreman_user, pg_monitor;
GRANT EXECUTE ON FUNCTION foreman._report_progress(text), foreman._report_run_totals(bigint, integer)
    TO foreman_user;

-- Executors report their job's progress too, and hide other roles' runs.
DROP VIEW foreman.tier_status;
DROP FUNCTION foreman._executors();
CREATE FUNCTION foreman._executors(OUT tier_id integer, OUT pid integer, OUT run_id bigint, OUT job_id bigint,
                                   OUT started_at timestamptz, OUT progress text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_executors';
REVOKE ALL ON FUNCTION foreman._executors() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman._executors() TO foreman_user, pg_monitor;

CREATE VIEW foreman.executors WITH (security_invoker = true) AS
SELECT t.name AS tier, e.pid, e.run_id, e.job_id, r.job_name, e.started_at, e.progress
  FROM foreman._executors() e
  JOIN foreman.tier t USING (tier_id)
  LEFT JOIN foreman.job_run r USING (run_id);
COMMENT ON VIEW foreman.executors IS 'executors of parallel tiers: the run each runs (the caller''s, or hidden) and its progress';
REVOKE ALL ON foreman.executors FROM PUBLIC;
GRANT SELECT ON foreman.executors TO foreman_user, pg_monitor;

-- The leadership lock moved to objsubid 3, which no SQL function can take.
CREATE VIEW foreman.tier_status WITH (security_invoker = true) AS
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
-- Jobs API 1.1: events. notify says which of a job's runs raise an event on
-- LISTEN foreman_events (README "Operating it"): 'failures' (failed, timed
-- out or crashed runs, and the job being disabled), 'all', or 'none'.

ALTER TABLE foreman.job ADD COLUMN notify text NOT NULL DEFAULT 'failures';
ALTER TABLE foreman.job ADD CONSTRAINT job_notify_valid CHECK (notify IN ('all', 'failures', 'none'));

DROP FUNCTION foreman.schedule(text, text, text, text, interval, interval, interval, boolean, text, integer,
                               interval, boolean, timestamptz, timestamptz, text, integer, integer, interval, text,
                               integer, regrole);
CREATE FUNCTION foreman.schedule(
    job_name       text,
    schedule       text,
    command        text,
    tier           text        DEFAULT NULL,
    timeout        interval    DEFAULT NULL,
    jitter         interval    DEFAULT '0',
    misfire_grace  interval    DEFAULT NULL,
    coalesce_runs  boolean     DEFAULT true,
    overlap        text        DEFAULT 'skip',
    retries        integer     DEFAULT 0,
    retry_backoff  interval    DEFAULT '10 seconds',
    enabled        boolean     DEFAULT true,
    start_at       timestamptz DEFAULT NULL,
    end_at         timestamptz DEFAULT NULL,
    time_zone      text        DEFAULT NULL,
    max_failures   integer     DEFAULT NULL,
    max_catchup    integer     DEFAULT 10,
    retry_backoff_max interval DEFAULT NULL,
    log_runs       text        DEFAULT 'all',
    max_instances  integer     DEFAULT 1,
    owner          regrole     DEFAULT NULL,
    notify         text        DEFAULT 'failures')
RETURNS bigint
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_schedule';
COMMENT ON FUNCTION foreman.schedule IS 'schedule a job (or replace the caller''s job of the same name); returns its job_id';

DROP FUNCTION foreman.alter_job(text, text, text, text, interval, interval, interval, boolean, text, integer,
                                interval, boolean, timestamptz, timestamptz, text, integer, integer, interval, text,
                                integer);
CREATE FUNCTION foreman.alter_job(
    job_name       text,
    schedule       text        DEFAULT NULL,
    command        text        DEFAULT NULL,
    tier           text        DEFAULT NULL,
    timeout        interval    DEFAULT NULL,
    jitter         interval    DEFAULT NULL,
    misfire_grace  interval    DEFAULT NULL,
    coalesce_runs  boolean     DEFAULT NULL,
    overlap        text        DEFAULT NULL,
    retries        integer     DEFAULT NULL,
    retry_backoff  interval    DEFAULT NULL,
    enabled        boolean     DEFAULT NULL,
    start_at       timestamptz DEFAULT NULL,
    end_at         timestamptz DEFAULT NULL,
    time_zone      text        DEFAULT NULL,
    max_failures   integer     DEFAULT NULL,
    max_catchup    integer     DEFAULT NULL,
    retry_backoff_max interval DEFAULT NULL,
    log_runs       text        DEFAULT NULL,
    max_instances  integer     DEFAULT NULL,
    notify         text        DEFAULT NULL)
RETURNS void
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_alter_job';
COMMENT ON FUNCTION foreman.alter_job IS 'change a job; NULL leaves a setting as it is, a zero interval clears timeout or misfire_grace';

REVOKE ALL ON FUNCTION foreman.schedule, foreman.alter_job FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman.schedule, foreman.alter_job TO foreman_user;

CREATE OR REPLACE VIEW foreman.jobs WITH (security_invoker = true) AS
SELECT j.job_id, j.job_name, j.owner::regrole AS owner, t.name AS tier, j.kind,
       j.schedule, j.schedule_kind, j.time_zone, j.command, j.enabled, j.disabled_reason,
       j.next_run_at, j.run_requested_at IS NOT NULL AS run_requested,
       j.timeout, j.jitter, j.phase, j.misfire_grace, j.coalesce_runs, j.overlap,
       j.retries, j.retry_backoff, j.retry_backoff_max, j.max_failures, j.max_catchup, j.log_runs,
       j.start_at, j.end_at, j.retry_at, j.retry_attempt, j.max_instances,
       j.last_status, j.last_started_at, j.last_finished_at, j.consecutive_failures,
       s.runs, s.failures, j.created_at, j.notify
  FROM foreman.job j
  JOIN foreman.tier t USING (tier_id)
  LEFT JOIN LATERAL (
      SELECT count(*) AS runs,
             count(*) FILTER (WHERE r.status IN ('failed', 'timed_out', 'crashed')) AS failures
        FROM foreman.job_run r WHERE r.job_id = j.job_id) s ON true;
