-- pg_foreman 1.0 -> 1.1. Every catalog change of release 1.1 is here; a
-- fresh CREATE EXTENSION installs 1.0 and applies this script, so an updated
-- 1.0 and a fresh 1.1 are the same catalog by construction (and the update
-- test compares them).

\echo Use "ALTER EXTENSION pg_foreman UPDATE TO '1.1'" to load this file. \quit

-- First, before any other foreman table: foreman.tier is the gate that every
-- transaction of pg_foreman's processes locks first (ACCESS SHARE, see
-- src/bgw/statements.hpp). Taking it first, the update waits for the
-- scheduler's transactions in progress and holds the new ones at the gate,
-- where they hold nothing it needs: the update and the scheduler cannot
-- deadlock. Every update script starts so.
LOCK TABLE foreman.tier IN ACCESS EXCLUSIVE MODE;

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
    notify         text        DEFAULT 'failures',
    after          text[]      DEFAULT NULL,
    after_condition text       DEFAULT 'success')
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
    notify         text        DEFAULT NULL,
    after          text[]      DEFAULT NULL,
    after_condition text       DEFAULT NULL,
    cascade        boolean     DEFAULT false)
RETURNS void
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_alter_job';
COMMENT ON FUNCTION foreman.alter_job IS 'change a job; NULL leaves a setting as it is, a zero interval clears timeout or misfire_grace';

DROP FUNCTION foreman.unschedule(text, boolean);
CREATE FUNCTION foreman.unschedule(job_name text, if_exists boolean DEFAULT false, cascade boolean DEFAULT false)
RETURNS boolean
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'foreman_unschedule';
COMMENT ON FUNCTION foreman.unschedule IS 'remove a job; cascade => true also removes the jobs that run after it';

REVOKE ALL ON FUNCTION foreman.schedule, foreman.alter_job, foreman.unschedule FROM PUBLIC;
GRANT EXECUTE ON FUNCTION foreman.schedule, foreman.alter_job, foreman.unschedule TO foreman_user;

-- ---------------------------------------------------------------------------
-- Job dependencies (README "Pipelines"). A job may run after other jobs
-- (job_dependency), instead of or as well as on a time schedule ('@after':
-- only after them). A run that no upstream caused - a scheduled one, a
-- run_now - starts a chain instance (chain_id: its run_id); the runs it
-- causes carry that id. A downstream runs once per instance, when each of its
-- upstreams reached from the instance's root has ended (fan-in) and its
-- after_condition holds for all of them; otherwise it is recorded 'skipped'
-- (reason 'upstream'), and so are its own downstreams: nothing waits forever.

ALTER TABLE foreman.job ADD COLUMN after_condition text NOT NULL DEFAULT 'success';
ALTER TABLE foreman.job ADD CONSTRAINT job_after_condition_valid
    CHECK (after_condition IN ('success', 'failure', 'completion'));
-- The instance a pending retry belongs to.
ALTER TABLE foreman.job ADD COLUMN retry_chain_id bigint;
ALTER TABLE foreman.job DROP CONSTRAINT job_schedule_kind_valid;
ALTER TABLE foreman.job ADD CONSTRAINT job_schedule_kind_valid
    CHECK (schedule_kind IN ('interval', 'cron', 'once', 'reboot', 'after'));

CREATE TABLE foreman.job_dependency (
    job_id      bigint NOT NULL REFERENCES foreman.job (job_id) ON DELETE CASCADE,
    upstream_id bigint NOT NULL REFERENCES foreman.job (job_id) ON DELETE CASCADE,
    PRIMARY KEY (job_id, upstream_id),
    CONSTRAINT job_dependency_not_itself CHECK (job_id <> upstream_id)
);
CREATE INDEX job_dependency_upstream_idx ON foreman.job_dependency (upstream_id);
COMMENT ON TABLE foreman.job_dependency IS 'pg_foreman: job_id runs after upstream_id (foreman.schedule(..., after => ...))';

ALTER TABLE foreman.job_run ADD COLUMN chain_id bigint;
CREATE INDEX job_run_chain_idx ON foreman.job_run (chain_id) WHERE chain_id IS NOT NULL;

-- What an instance's downstreams wait for: the upstreams that have ended.
CREATE TABLE foreman.chain_wait (
    chain_id        bigint NOT NULL,
    job_id          bigint NOT NULL REFERENCES foreman.job (job_id) ON DELETE CASCADE,
    upstream_id     bigint NOT NULL,
    upstream_run_id bigint NOT NULL,
    outcome         text NOT NULL,
    PRIMARY KEY (chain_id, job_id, upstream_id)
);
-- Serializes the fan-in decision of one downstream in one instance: upstreams
-- that end at once, in different tiers, each insert their wait row and then
-- pass this gate; the one that passes last sees every row and decides.
CREATE TABLE foreman.chain_gate (
    chain_id bigint NOT NULL,
    job_id   bigint NOT NULL REFERENCES foreman.job (job_id) ON DELETE CASCADE,
    passes   integer NOT NULL DEFAULT 1,
    PRIMARY KEY (chain_id, job_id)
);
-- Downstream runs that are due: recorded in the transaction of the upstream
-- outcome that completes them, consumed by the run that starts.
CREATE TABLE foreman.chain_request (
    job_id       bigint NOT NULL REFERENCES foreman.job (job_id) ON DELETE CASCADE,
    chain_id     bigint NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, chain_id)
);
REVOKE ALL ON foreman.job_dependency, foreman.chain_wait, foreman.chain_gate, foreman.chain_request FROM PUBLIC;
-- A dependency is seen by whoever sees the job that depends.
GRANT SELECT ON foreman.job_dependency TO PUBLIC;
ALTER TABLE foreman.job_dependency ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_dependency_visible ON foreman.job_dependency FOR SELECT
    USING (EXISTS (SELECT FROM foreman.job j WHERE j.job_id = job_dependency.job_id));

-- The one rule of chains: the run p_run_id has ended for good (no retry
-- pending). Its instance's downstreams of its job learn its outcome; each
-- that has heard from every upstream it waits for is requested, or skipped
-- (and the skip goes on down). Called by the coordinator in the transaction
-- that records the outcome.
CREATE FUNCTION foreman._chain_advance(p_run_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r        foreman.job_run;
    root_job bigint;
    d        record;
    waited   bigint;
    needed   bigint;
    unmet    record;
    skipped  bigint;
BEGIN
    SELECT * INTO r FROM foreman.job_run WHERE run_id = p_run_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF r.chain_id IS NULL THEN
        -- No upstream caused it: it is the root of an instance.
        UPDATE foreman.job_run SET chain_id = run_id WHERE run_id = p_run_id;
        r.chain_id := p_run_id;
    END IF;
    root_job := coalesce((SELECT job_id FROM foreman.job_run WHERE run_id = r.chain_id), r.job_id);
    FOR d IN SELECT dep.job_id, j.after_condition, j.job_name
               FROM foreman.job_dependency dep JOIN foreman.job j ON j.job_id = dep.job_id
              WHERE dep.upstream_id = r.job_id ORDER BY dep.job_id
    LOOP
        INSERT INTO foreman.chain_wait (chain_id, job_id, upstream_id, upstream_run_id, outcome)
        VALUES (r.chain_id, d.job_id, r.job_id, r.run_id, r.status)
        ON CONFLICT DO NOTHING;
        -- Waits for an upstream deciding the same downstream right now; the
        -- statements after it see that one's wait row (read committed).
        INSERT INTO foreman.chain_gate AS g (chain_id, job_id) VALUES (r.chain_id, d.job_id)
        ON CONFLICT (chain_id, job_id) DO UPDATE SET passes = g.passes + 1;
        -- The upstreams it waits for in this instance: those the root reaches.
        WITH RECURSIVE reach(job_id) AS (
            SELECT root_job
            UNION
            SELECT dep.job_id FROM foreman.job_dependency dep JOIN reach ON dep.upstream_id = reach.job_id)
        SELECT count(*) INTO needed FROM foreman.job_dependency dep
         WHERE dep.job_id = d.job_id AND dep.upstream_id IN (SELECT job_id FROM reach);
        SELECT count(*) INTO waited FROM foreman.chain_wait w WHERE w.chain_id = r.chain_id AND w.job_id = d.job_id;
        CONTINUE WHEN waited < needed;
        SELECT w.upstream_id, w.outcome, u.job_name INTO unmet
          FROM foreman.chain_wait w LEFT JOIN foreman.job u ON u.job_id = w.upstream_id
         WHERE w.chain_id = r.chain_id AND w.job_id = d.job_id
           AND NOT CASE d.after_condition
                   WHEN 'success' THEN w.outcome = 'succeeded'
                   WHEN 'failure' THEN w.outcome IN ('failed', 'timed_out', 'crashed')
                   ELSE w.outcome NOT IN ('skipped')
               END
         ORDER BY w.upstream_id LIMIT 1;
        DELETE FROM foreman.chain_wait w WHERE w.chain_id = r.chain_id AND w.job_id = d.job_id;
        DELETE FROM foreman.chain_gate g WHERE g.chain_id = r.chain_id AND g.job_id = d.job_id;
        IF unmet IS NULL THEN
            INSERT INTO foreman.chain_request (job_id, chain_id) VALUES (d.job_id, r.chain_id)
            ON CONFLICT DO NOTHING;
        ELSE
            INSERT INTO foreman.job_run (job_id, job_name, owner, owner_name, tier_id, pid, status, reason, message,
                                         scheduled_for, started_at, finished_at, chain_id)
            SELECT j.job_id, j.job_name, j.owner, j.owner_name, j.tier_id, pg_backend_pid(), 'skipped', 'upstream',
                   format('upstream job "%s" %s; the job runs after %s of its upstreams',
                          coalesce(unmet.job_name, unmet.upstream_id::text), unmet.outcome,
                          CASE d.after_condition WHEN 'success' THEN 'the success'
                                                 WHEN 'failure' THEN 'the failure'
                                                 ELSE 'the completion' END),
                   clock_timestamp(), clock_timestamp(), clock_timestamp(), r.chain_id
              FROM foreman.job j WHERE j.job_id = d.job_id
            RETURNING run_id INTO skipped;
            UPDATE foreman.job j SET runs_skipped = j.runs_skipped + 1
             WHERE j.job_id = (SELECT lj.job_id FROM foreman.job lj WHERE lj.job_id = d.job_id FOR UPDATE SKIP LOCKED);
            IF skipped IS NOT NULL THEN
                PERFORM foreman._chain_advance(skipped);
            END IF;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION foreman._chain_advance(bigint) FROM PUBLIC;

-- Each instance: its root, every run with its status, and what still waits.
CREATE VIEW foreman.chain_runs AS
SELECT r.chain_id, root.job_name AS root_job, r.run_id, r.job_id, r.job_name, t.name AS tier, r.status, r.reason,
       r.started_at, r.finished_at, r.message
  FROM foreman.job_run r
  JOIN foreman.job_run root ON root.run_id = r.chain_id
  LEFT JOIN foreman.tier t ON t.tier_id = r.tier_id
 WHERE pg_catalog.pg_has_role(r.owner, 'USAGE') OR pg_catalog.pg_has_role('foreman_admin', 'USAGE')
    OR pg_catalog.pg_has_role('foreman_monitor', 'USAGE')
UNION ALL
SELECT q.chain_id, root.job_name, NULL, q.job_id, j.job_name, t.name, 'queued', 'its upstreams ended',
       NULL, NULL, format('requested %s', q.requested_at)
  FROM foreman.chain_request q
  JOIN foreman.job j ON j.job_id = q.job_id
  JOIN foreman.tier t ON t.tier_id = j.tier_id
  LEFT JOIN foreman.job_run root ON root.run_id = q.chain_id
 WHERE pg_catalog.pg_has_role(j.owner, 'USAGE') OR pg_catalog.pg_has_role('foreman_admin', 'USAGE')
    OR pg_catalog.pg_has_role('foreman_monitor', 'USAGE')
UNION ALL
SELECT w.chain_id, root.job_name, NULL, w.job_id, j.job_name, t.name, 'waiting', 'for its other upstreams',
       NULL, NULL, string_agg(format('%s %s', coalesce(u.job_name, w.upstream_id::text), w.outcome), ', ')
  FROM foreman.chain_wait w
  JOIN foreman.job j ON j.job_id = w.job_id
  JOIN foreman.tier t ON t.tier_id = j.tier_id
  LEFT JOIN foreman.job u ON u.job_id = w.upstream_id
  LEFT JOIN foreman.job_run root ON root.run_id = w.chain_id
 WHERE pg_catalog.pg_has_role(j.owner, 'USAGE') OR pg_catalog.pg_has_role('foreman_admin', 'USAGE')
    OR pg_catalog.pg_has_role('foreman_monitor', 'USAGE')
 GROUP BY w.chain_id, root.job_name, w.job_id, j.job_name, t.name;
COMMENT ON VIEW foreman.chain_runs IS 'chain instances: every run by root, and the downstream runs queued or waiting';
GRANT SELECT ON foreman.chain_runs TO PUBLIC;

-- ---------------------------------------------------------------------------
-- What a person looks at, with 1.1's columns.

CREATE OR REPLACE VIEW foreman.jobs WITH (security_invoker = true) AS
SELECT j.job_id, j.job_name, j.owner::regrole AS owner, t.name AS tier, j.kind,
       j.schedule, j.schedule_kind, j.time_zone, j.command, j.enabled, j.disabled_reason,
       j.next_run_at, j.run_requested_at IS NOT NULL AS run_requested,
       j.timeout, j.jitter, j.phase, j.misfire_grace, j.coalesce_runs, j.overlap,
       j.retries, j.retry_backoff, j.retry_backoff_max, j.max_failures, j.max_catchup, j.log_runs,
       j.start_at, j.end_at, j.retry_at, j.retry_attempt, j.max_instances,
       j.last_status, j.last_started_at, j.last_finished_at, j.consecutive_failures,
       s.runs, s.failures, j.created_at, j.notify, j.after_condition,
       (SELECT array_agg(u.job_name ORDER BY u.job_name) FROM foreman.job_dependency d
          JOIN foreman.job u ON u.job_id = d.upstream_id WHERE d.job_id = j.job_id) AS after
  FROM foreman.job j
  JOIN foreman.tier t USING (tier_id)
  LEFT JOIN LATERAL (
      SELECT count(*) AS runs,
             count(*) FILTER (WHERE r.status IN ('failed', 'timed_out', 'crashed')) AS failures
        FROM foreman.job_run r WHERE r.job_id = j.job_id) s ON true;

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

-- ---- Backup and restore: pg_dump carries the schedule (issue 13) ----
--
-- pg_dump dumps the rows of the tables marked below. A restore runs CREATE
-- EXTENSION first (the built-in tiers and job -1 exist then) and loads the
-- dumped rows through the BEFORE INSERT triggers of this section, which
--   * merge a dumped built-in tier or built-in job into the one that exists
--     (its settings are carried; it is not duplicated),
--   * map each owner by name to a role of this server; a job whose owner role
--     does not exist here is disabled with the reason, and its rows get owner
--     0, which is no role: only foreman_admin and superusers see them, and
--     they never run as anybody,
--   * move the identity sequences of tiers and jobs past the restored ids,
--   * number restored runs anew, in their order: coordinators start running
--     the restored jobs as soon as their rows are committed, maybe before the
--     history is loaded, and their runs must never take an id it brings,
--   * turn a run that was 'running' when the dump was taken into 'crashed'.
-- Rows pg_foreman writes itself (the API and the coordinators pin search_path
-- to 'pg_catalog, pg_temp'; extension scripts run with 'foreman, pg_temp')
-- pass untouched: the triggers' WHEN clause keeps them off the hot path.
-- Runtime state is not dumped: foreman.tier_lease.

SELECT pg_catalog.pg_extension_config_dump('foreman.tier', '');
SELECT pg_catalog.pg_extension_config_dump('foreman.job', '');
SELECT pg_catalog.pg_extension_config_dump('foreman.maintenance', '');
-- pg_dump appends the condition to its query as it is: the history comes in
-- the order it was made, and a restore numbers it anew in that order (see
-- _restore_run).
SELECT pg_catalog.pg_extension_config_dump('foreman.job_run', 'ORDER BY run_id');
-- Pipelines: which job runs after which (pending chain requests and waits
-- are runtime state, not dumped).
SELECT pg_catalog.pg_extension_config_dump('foreman.job_dependency', '');
-- The identity sequences are not marked: pg_dump's setval comes after the
-- data and is absolute, so it could move a sequence back below ids used on the
-- target meanwhile; the triggers below only ever move them forward.

-- A missing owner is owner 0: several missing roles may each have a job of
-- the same name, so among them the name of the missing role decides.
ALTER TABLE foreman.job DROP CONSTRAINT job_name_unique;
CREATE UNIQUE INDEX job_name_unique ON foreman.job
    (owner, job_name, (CASE WHEN owner = 0 THEN owner_name ELSE ''::name END));

-- The role of this server that a restored row's owner_name names, or 0.
CREATE FUNCTION foreman._restored_owner(owner_name name)
RETURNS oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = owner_name), 0::oid) $$;

-- An identity sequence moves past a restored id (never back).
CREATE FUNCTION foreman._restored_id(tab regclass, col name, id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seq regclass := pg_catalog.pg_get_serial_sequence(tab::text, col)::regclass;
BEGIN
    IF id > coalesce(pg_catalog.pg_sequence_last_value(seq), 0) THEN
        PERFORM pg_catalog.setval(seq, id, true);
    END IF;
END
$$;

-- Copies every column of a dumped row but the given ones into the existing
-- row of the same key: a built-in tier or job gets the source's settings,
-- including columns later releases add.
CREATE FUNCTION foreman._restore_merge(tab regclass, key name, row_data jsonb, keep name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = tab AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       AND a.attname <> key AND a.attname <> ALL (keep);
    EXECUTE pg_catalog.format('UPDATE %1$s t SET (%2$s) = (SELECT %2$s FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1))'
                              ' WHERE t.%3$I = ($1 ->> %4$L)::bigint', tab, cols, key, key)
      USING row_data;
END
$$;

CREATE FUNCTION foreman._restore_tier() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    existing integer;
BEGIN
    SELECT t.tier_id INTO existing FROM foreman.tier t WHERE t.name = NEW.name FOR UPDATE;
    IF FOUND THEN
        IF existing <> NEW.tier_id THEN
            RAISE EXCEPTION 'tier "%" has id % here and % in the dump', NEW.name, existing, NEW.tier_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'Restore into a database where the extension was just created, as pg_dump''s CREATE EXTENSION does.';
        END IF;
        PERFORM foreman._restore_merge('foreman.tier', 'tier_id', pg_catalog.to_jsonb(NEW), '{}');
        RETURN NULL;
    END IF;
    PERFORM foreman._restored_id('foreman.tier', 'tier_id', NEW.tier_id);
    RETURN NEW;
END
$$;

CREATE FUNCTION foreman._restore_job() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.job_id < 0 AND EXISTS (SELECT FROM foreman.job j WHERE j.job_id = NEW.job_id) THEN
        -- A built-in job: the source's settings, this extension's owner; a
        -- new revision, so that a coordinator that loaded it reads it again.
        PERFORM foreman._restore_merge('foreman.job', 'job_id', pg_catalog.to_jsonb(NEW), '{owner,owner_name,revision,last_run_id}');
        UPDATE foreman.job j SET revision = j.revision + 1 WHERE j.job_id = NEW.job_id;
        RETURN NULL;
    END IF;
    NEW.owner := foreman._restored_owner(NEW.owner_name);
    IF NEW.owner = 0 THEN
        NEW.enabled := false;
        NEW.disabled_reason := CASE WHEN NEW.owner_name IS NULL
            THEN 'restored without its owner: the role that owned it was gone before the dump'
            ELSE pg_catalog.format('restored without its owner: role "%s" does not exist on this server',
                                   NEW.owner_name) END;
    END IF;
    -- Restored runs get new ids (foreman._restore_run).
    NEW.last_run_id := NULL;
    IF NEW.job_id > 0 THEN
        PERFORM foreman._restored_id('foreman.job', 'job_id', NEW.job_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION foreman._restore_maintenance() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.owner := foreman._restored_owner(NEW.owner_name);
    RETURN NEW;
END
$$;

CREATE FUNCTION foreman._restore_run() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.owner := foreman._restored_owner(NEW.owner_name);
    IF NEW.status = 'running' THEN
        -- It never ran here, and its outcome on the source is not in the dump.
        NEW.status := 'crashed';
        NEW.reason := 'restored';
        NEW.message := 'the run was going when the database was dumped; its outcome is not in the dump';
        NEW.finished_at := NEW.started_at;
        NEW.summary_pending := false;
    END IF;
    NEW.run_id := pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('foreman.job_run', 'run_id'));
    -- Runs are numbered anew: the instance a restored run belonged to (its
    -- root's old id) is not kept.
    NEW.chain_id := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER restore_tier BEFORE INSERT ON foreman.tier FOR EACH ROW
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('pg_catalog, pg_temp', 'foreman, pg_temp'))
    EXECUTE FUNCTION foreman._restore_tier();
CREATE TRIGGER restore_job BEFORE INSERT ON foreman.job FOR EACH ROW
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('pg_catalog, pg_temp', 'foreman, pg_temp'))
    EXECUTE FUNCTION foreman._restore_job();
CREATE TRIGGER restore_maintenance BEFORE INSERT ON foreman.maintenance FOR EACH ROW
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('pg_catalog, pg_temp', 'foreman, pg_temp'))
    EXECUTE FUNCTION foreman._restore_maintenance();
CREATE TRIGGER restore_run BEFORE INSERT ON foreman.job_run FOR EACH ROW
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('pg_catalog, pg_temp', 'foreman, pg_temp'))
    EXECUTE FUNCTION foreman._restore_run();

-- Jobs restored without their owner, and their runs, given to a role made
-- since (of that name). The jobs stay disabled: enable them with
-- foreman.alter_job(..., enabled => true). Superusers only.
CREATE FUNCTION foreman.adopt_restored_jobs(owner regrole)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    role_name name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = owner);
    n bigint;
BEGIN
    UPDATE foreman.job j
       SET owner = adopt_restored_jobs.owner, revision = j.revision + 1,
           disabled_reason = pg_catalog.format('restored without its owner; adopted by role "%s": enable it with foreman.alter_job(..., enabled => true)', role_name)
     WHERE j.owner = 0 AND j.owner_name = role_name;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE foreman.maintenance m SET owner = adopt_restored_jobs.owner WHERE m.owner = 0 AND m.owner_name = role_name;
    UPDATE foreman.job_run r SET owner = adopt_restored_jobs.owner WHERE r.owner = 0 AND r.owner_name = role_name;
    RETURN n;
END
$$;
COMMENT ON FUNCTION foreman.adopt_restored_jobs IS 'give the jobs restored without their owner (and their runs) to the role of that name made since; they stay disabled';
REVOKE ALL ON FUNCTION foreman.adopt_restored_jobs(regrole) FROM PUBLIC;

REVOKE ALL ON FUNCTION foreman._restored_owner(name), foreman._restored_id(regclass, name, bigint),
    foreman._restore_merge(regclass, name, jsonb, name[]), foreman._restore_tier(), foreman._restore_job(),
    foreman._restore_maintenance(), foreman._restore_run() FROM PUBLIC;

-- ---- end of backup and restore ----

-- ---------------------------------------------------------------------------
-- Observability (issue 16): what an operator sees.
--
--   foreman.job_stats, foreman.tier_stats   per job / per tier over a window
--   foreman.timeline_svg()                  a Gantt chart of the runs
--   foreman.metrics                         for postgres_exporter (doc/postgres_exporter.yaml)
--   foreman_monitor                         a role that reads every job's runs and changes nothing
--
-- All of it runs with the caller's rights over the row-level-secured tables:
-- a role sees the statistics, bars and metrics of exactly the jobs it sees
-- in foreman.jobs. The internal functions pin search_path or were bound when
-- they were created (SQL-standard bodies).

-- A role for monitoring (an exporter, a dashboard): sees every job and run,
-- as foreman_admin does, and may change nothing. Cluster-wide, created when
-- missing, like foreman_user and foreman_admin.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'foreman_monitor') THEN
        CREATE ROLE foreman_monitor NOLOGIN;
    END IF;
END
$roles$;
CREATE POLICY job_monitor ON foreman.job FOR SELECT
    USING (pg_catalog.pg_has_role('foreman_monitor', 'USAGE'));
CREATE POLICY job_run_monitor ON foreman.job_run FOR SELECT
    USING (pg_catalog.pg_has_role('foreman_monitor', 'USAGE'));
GRANT SELECT ON foreman.tier_status, foreman.executors TO foreman_monitor;
GRANT EXECUTE ON FUNCTION foreman._coordinators(), foreman._tier_stalls(), foreman._executors() TO foreman_monitor;

-- Windowed statistics read only the rows of their window, and read them
-- together (runs are written in time order, so a window is a contiguous
-- stretch of the table): per job, the runs that started in it, by
-- started_at (job_run_started_idx); per tier and in the timeline, every run
-- that ended after the window began or is still running (finished_at IS
-- NULL), by finished_at, so a long run that began before the window counts
-- for its part inside it. The planner reads a narrow window through the
-- index and a wide one (most of the history) sequentially. The latest
-- failure of a job is one probe of a partial index, however long its
-- history. (The conditions are plain comparisons of columns: under
-- row-level security only leakproof conditions may use an index, and an
-- expression such as coalesce() is not one.)
CREATE INDEX job_run_finished_idx ON foreman.job_run (finished_at);
CREATE INDEX job_run_job_failed_idx ON foreman.job_run (job_id, started_at)
    WHERE status IN ('failed', 'timed_out', 'crashed');
-- foreman.tier never changes enough for autovacuum to analyze it; without
-- statistics the planner takes it for 650 rows, prices the plans that join
-- it as large and compiles them with JIT (100 ms for a 1 ms query).
ANALYZE foreman.tier;

-- Counters of finished runs by outcome, and the last success, kept on the
-- job's row: they never go down when history is trimmed or not kept
-- (log_runs), so a scraper can take them as counters. Finished runs are
-- counted when their job's summary is written (in the same statement, so no
-- extra row is written); skipped fire times when their row is inserted.
ALTER TABLE foreman.job
    ADD COLUMN runs_succeeded bigint NOT NULL DEFAULT 0,
    ADD COLUMN runs_failed bigint NOT NULL DEFAULT 0,
    ADD COLUMN runs_timed_out bigint NOT NULL DEFAULT 0,
    ADD COLUMN runs_cancelled bigint NOT NULL DEFAULT 0,
    ADD COLUMN runs_crashed bigint NOT NULL DEFAULT 0,
    ADD COLUMN runs_skipped bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_succeeded_at timestamptz;
COMMENT ON COLUMN foreman.job.runs_succeeded IS
    'finished runs by outcome (runs_*), counted when the run''s summary is written; never decrease';
UPDATE foreman.job j
   SET runs_succeeded = c.succeeded, runs_failed = c.failed, runs_timed_out = c.timed_out,
       runs_cancelled = c.cancelled, runs_crashed = c.crashed, runs_skipped = c.skipped,
       last_succeeded_at = c.last_succeeded_at
  FROM (SELECT r.job_id,
               count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE r.status = 'failed') AS failed,
               count(*) FILTER (WHERE r.status = 'timed_out') AS timed_out,
               count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE r.status = 'crashed') AS crashed,
               count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
               max(r.finished_at) FILTER (WHERE r.status = 'succeeded') AS last_succeeded_at
          FROM foreman.job_run r GROUP BY r.job_id) c
 WHERE c.job_id = j.job_id;

-- The statements that write a run's summary and insert a skipped fire time
-- count it themselves (no trigger on the scheduler's hot path): the
-- coordinator's finishing UPDATE of the job's row, its skip statement, and
-- foreman._chain_advance for a downstream it skips (SKIP LOCKED there: a
-- downstream's row its owner holds is not waited for, and that one skip is
-- not counted). Restored rows are not counted: a dump carries its jobs'
-- counters.

-- Per job over [since, until): runs (fire times that started a command),
-- their outcomes, skipped fire times, durations and start delays, rows.
-- Duration percentiles are over finished runs; start delay is started_at -
-- scheduled_for of every run. The last success and the last failure
-- (failed, timed_out or crashed) are the latest ever, not only the window's.
CREATE FUNCTION foreman.job_stats(since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (job_id bigint, job_name text, owner regrole, tier text, window_size interval,
               runs bigint, succeeded bigint, failed bigint, timed_out bigint, cancelled bigint,
               crashed bigint, skipped bigint, running bigint, success_ratio numeric,
               duration_p50 interval, duration_p95 interval, duration_p99 interval, duration_max interval,
               start_delay_p50 interval, start_delay_p95 interval, start_delay_max interval,
               rows_affected bigint, last_success_at timestamptz,
               last_error_at timestamptz, last_error_sqlstate text, last_error_message text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT j.job_id, j.job_name, j.owner::regrole, t.name,
           CASE WHEN isfinite(job_stats.since) AND isfinite(job_stats.until) THEN job_stats.until - job_stats.since END,
           coalesce(s.runs, 0), coalesce(s.succeeded, 0), coalesce(s.failed, 0), coalesce(s.timed_out, 0),
           coalesce(s.cancelled, 0), coalesce(s.crashed, 0), coalesce(s.skipped, 0), coalesce(s.running, 0),
           round(s.succeeded::numeric / nullif(s.succeeded + s.failed + s.timed_out + s.crashed, 0), 4),
           s.durations[1], s.durations[2], s.durations[3], s.duration_max,
           s.delays[1], s.delays[2], s.delay_max,
           s.rows_affected::bigint, j.last_succeeded_at,
           e.finished_at, e.sqlstate, e.message
      FROM foreman.job j
      JOIN foreman.tier t ON t.tier_id = j.tier_id
      -- Grouped by job_id + 0, a value no index is ordered by: otherwise the
      -- planner may read the whole history in job order to skip a sort.
      LEFT JOIN (
          SELECT r.job_id + 0 AS job_id,
                 count(*) FILTER (WHERE r.status <> 'skipped') AS runs,
                 count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
                 count(*) FILTER (WHERE r.status = 'failed') AS failed,
                 count(*) FILTER (WHERE r.status = 'timed_out') AS timed_out,
                 count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
                 count(*) FILTER (WHERE r.status = 'crashed') AS crashed,
                 count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
                 count(*) FILTER (WHERE r.status = 'running') AS running,
                 percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY r.duration)
                     FILTER (WHERE r.status NOT IN ('skipped', 'running')) AS durations,
                 max(r.duration) FILTER (WHERE r.status NOT IN ('skipped', 'running')) AS duration_max,
                 percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY r.started_at - r.scheduled_for)
                     FILTER (WHERE r.status <> 'skipped') AS delays,
                 max(r.started_at - r.scheduled_for) FILTER (WHERE r.status <> 'skipped') AS delay_max,
                 sum(r.rows_affected) AS rows_affected
            FROM foreman.job_run r
           WHERE r.started_at >= job_stats.since AND r.started_at < job_stats.until
           GROUP BY r.job_id + 0) s
        ON s.job_id = j.job_id
      LEFT JOIN LATERAL (
          SELECT r.finished_at, r.sqlstate, r.message
            FROM foreman.job_run r
           WHERE r.job_id = j.job_id AND r.status IN ('failed', 'timed_out', 'crashed')
           ORDER BY r.started_at DESC
           LIMIT 1) e
        ON true
     ORDER BY j.job_id;
END;
COMMENT ON FUNCTION foreman.job_stats(timestamptz, timestamptz) IS
    'per job the caller may see: runs, outcomes, duration and start-delay percentiles, rows and last error over [since, until)';

CREATE VIEW foreman.job_stats WITH (security_invoker = true) AS
SELECT * FROM foreman.job_stats(now() - interval '1 hour')
UNION ALL
SELECT * FROM foreman.job_stats(now() - interval '1 day');
COMMENT ON VIEW foreman.job_stats IS
    'foreman.job_stats() over the last hour and the last day (window_size), for the jobs the caller may see';

-- Per tier over [since, until): runs, failures, skipped fire times, start
-- delays, and how busy it was: the time its runs ran (clipped to the window,
-- a running one up to now) over the wall time its slots had (the window,
-- from the tier's creation at the earliest, times its concurrency). A
-- sequential tier at busy_fraction 1 is saturated: due runs wait (lag).
-- lag is now - the oldest due time not yet started (0 when nothing waits).
-- A role that is not foreman_admin or foreman_monitor sees its own jobs'
-- share of the tier.
CREATE FUNCTION foreman.tier_stats(since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (tier text, concurrency integer, window_size interval, runs bigint, failures bigint,
               skipped bigint, running bigint, busy interval, busy_fraction numeric,
               start_delay_p50 interval, start_delay_p95 interval, start_delay_max interval, lag interval)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT t.name, t.concurrency,
           CASE WHEN isfinite(tier_stats.since) AND isfinite(tier_stats.until) THEN tier_stats.until - tier_stats.since END,
           coalesce(b.runs, 0), coalesce(b.failures, 0), coalesce(b.skipped, 0), coalesce(b.running, 0),
           coalesce(b.busy, interval '0'),
           round((extract(epoch FROM coalesce(b.busy, interval '0'))
                  / nullif(extract(epoch FROM least(tier_stats.until, now())
                                              - greatest(tier_stats.since, t.created_at)), 0)
                  / t.concurrency)::numeric, 4),
           b.delays[1], b.delays[2], b.delay_max,
           greatest(now() - d.oldest_due, interval '0')
      FROM foreman.tier t
      LEFT JOIN (
          SELECT r.tier_id,
                 count(*) FILTER (WHERE r.status <> 'skipped' AND r.started_at >= tier_stats.since) AS runs,
                 count(*) FILTER (WHERE r.status IN ('failed', 'timed_out', 'crashed')
                                    AND r.started_at >= tier_stats.since) AS failures,
                 count(*) FILTER (WHERE r.status = 'skipped' AND r.started_at >= tier_stats.since) AS skipped,
                 count(*) FILTER (WHERE r.status = 'running') AS running,
                 sum(least(coalesce(r.finished_at, now()), tier_stats.until)
                     - greatest(r.started_at, tier_stats.since)) FILTER (WHERE r.status <> 'skipped') AS busy,
                 percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY r.started_at - r.scheduled_for)
                     FILTER (WHERE r.status <> 'skipped' AND r.started_at >= tier_stats.since) AS delays,
                 max(r.started_at - r.scheduled_for)
                     FILTER (WHERE r.status <> 'skipped' AND r.started_at >= tier_stats.since) AS delay_max
            FROM (SELECT x.tier_id, x.status, x.started_at, x.finished_at, x.scheduled_for FROM foreman.job_run x
                   WHERE x.finished_at > tier_stats.since AND x.started_at < tier_stats.until
                  UNION ALL
                  SELECT x.tier_id, x.status, x.started_at, x.finished_at, x.scheduled_for FROM foreman.job_run x
                   WHERE x.finished_at IS NULL AND x.started_at < tier_stats.until) r
           GROUP BY r.tier_id) b
        ON b.tier_id = t.tier_id
      LEFT JOIN LATERAL (
          SELECT min(due.at) AS oldest_due
            FROM (SELECT min(j.next_run_at) AS at FROM foreman.job j
                   WHERE j.tier_id = t.tier_id AND j.enabled AND j.next_run_at <= now()
                  UNION ALL
                  SELECT min(j.run_requested_at) FROM foreman.job j
                   WHERE j.tier_id = t.tier_id AND j.run_requested_at IS NOT NULL AND j.enabled
                  UNION ALL
                  SELECT min(j.retry_at) FROM foreman.job j
                   WHERE j.tier_id = t.tier_id AND j.retry_at <= now() AND j.enabled) due) d
        ON true
     ORDER BY t.tier_id;
END;
COMMENT ON FUNCTION foreman.tier_stats(timestamptz, timestamptz) IS
    'per tier: runs, failures, start delays and busy fraction (time running / wall time x concurrency) over [since, until), and lag now';

CREATE VIEW foreman.tier_stats WITH (security_invoker = true) AS
SELECT * FROM foreman.tier_stats(now() - interval '1 hour')
UNION ALL
SELECT * FROM foreman.tier_stats(now() - interval '1 day');
COMMENT ON VIEW foreman.tier_stats IS 'foreman.tier_stats() over the last hour and the last day (window_size)';

-- Text for XML character data and attribute values: the five markup
-- characters escaped, characters XML 1.0 does not allow replaced by '?', and
-- (in a UTF8 database) everything beyond ASCII written as a character
-- reference, so the document is ASCII whatever the client encoding.
CREATE FUNCTION foreman._xml_text(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    out text := replace(replace(replace(replace(replace(s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                                '"', '&quot;'), '''', '&apos;');
BEGIN
    out := regexp_replace(out, '[\x01-\x08\x0b\x0c\x0e-\x1f]', '?', 'g');
    IF out ~ '[^\x01-\x7f]' AND getdatabaseencoding() = 'UTF8' THEN
        out := regexp_replace(out, '[\ufffe\uffff]', '?', 'g');
        SELECT string_agg(CASE WHEN ascii(c) > 127 THEN '&#' || ascii(c) || ';' ELSE c END, '' ORDER BY n)
          INTO out
          FROM regexp_split_to_table(out, '') WITH ORDINALITY AS x(c, n);
    END IF;
    RETURN out;
END
$$;

-- A duration as a person reads it: 8.7 ms, 3.21 s, 00:02:03.
CREATE FUNCTION foreman._duration_text(d interval) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE WHEN d IS NULL THEN NULL
                WHEN d < interval '1 second' THEN round(extract(epoch FROM d) * 1000, 1) || ' ms'
                WHEN d < interval '1 minute' THEN round(extract(epoch FROM d), 2) || ' s'
                ELSE justify_hours(date_trunc('second', d))::text END;
END;

-- The run timeline as SVG: one lane per tier (per executor in a parallel
-- tier), one bar per run from its start to its end (a running one to now),
-- coloured by outcome, with a <title> tooltip each; a time axis and a
-- legend. Only runs the caller may see. At most max_runs bars (the latest
-- ones); the picture says when it left runs out.
CREATE FUNCTION foreman.timeline_svg(since timestamptz DEFAULT now() - interval '10 minutes',
                                     until timestamptz DEFAULT now(),
                                     tier text DEFAULT NULL,
                                     max_runs integer DEFAULT 5000)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width    constant float8 := 1000;
    x0       constant float8 := 200;            -- the plot's left edge; lane labels to its left
    plot_w   constant float8 := 776;            -- to 24 px before the right edge
    lane_h   constant float8 := 24;
    y0       constant float8 := 64;             -- the first lane's top
    steps    constant float8[] := '{0.01,0.02,0.05,0.1,0.2,0.5,1,2,5,10,15,30,60,120,300,600,900,1800,3600,'
                                  '7200,10800,21600,43200,86400,172800,604800}';
    span     float8;
    step     float8;
    tick_fmt text;
    n_lanes  integer;
    n_total  bigint;
    n_drawn  bigint;
    plot_h   float8;
    lanes    text;
    bars     text;
    links    text;
    axis     text;
    legend   text;
    header   text;
    now_mark text := '';
BEGIN
    IF NOT isfinite(since) OR NOT isfinite(until) THEN
        RAISE EXCEPTION 'since and until must be finite'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF since IS NULL OR until IS NULL OR until <= since THEN
        RAISE EXCEPTION 'until must be later than since'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example foreman.timeline_svg(now() - interval ''1 hour'', now()).';
    END IF;
    IF max_runs IS NULL OR max_runs < 1 OR max_runs > 1000000 THEN
        RAISE EXCEPTION 'max_runs must be between 1 and 1000000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF timeline_svg.tier IS NOT NULL
       AND NOT EXISTS (SELECT FROM foreman.tier t WHERE t.name = timeline_svg.tier) THEN
        RAISE EXCEPTION 'tier "%" does not exist', timeline_svg.tier
            USING ERRCODE = 'undefined_object',
                  HINT = (SELECT 'Tiers are: ' || string_agg(quote_literal(t.name), ', ' ORDER BY t.tier_id) || '.'
                            FROM foreman.tier t);
    END IF;
    span := extract(epoch FROM until - since);

    -- Runs overlapping the window (by finished_at), the latest
    -- max_runs of them; a lane per tier, or per process in a parallel tier.
    WITH tiers AS (
        SELECT t.tier_id, t.name, t.concurrency > 1 AS parallel
          FROM foreman.tier t
         WHERE timeline_svg.tier IS NULL OR t.name = timeline_svg.tier),
    overlapping AS (
        SELECT r.run_id, r.job_name, r.owner, r.tier_id, CASE WHEN tr.parallel THEN r.pid END AS lane_pid,
               r.status, r.reason, r.attempt, r.started_at,
               coalesce(r.finished_at, greatest(least(now(), until), r.started_at)) AS ended,
               r.finished_at IS NULL AS open, r.sqlstate, r.message, r.rows_affected, r.chain_id
          FROM (SELECT * FROM foreman.job_run x WHERE x.finished_at >= since AND x.started_at < until
                UNION ALL
                SELECT * FROM foreman.job_run x WHERE x.finished_at IS NULL AND x.started_at < until) r
          JOIN tiers tr ON tr.tier_id = r.tier_id),
    runs AS (
        SELECT * FROM overlapping ORDER BY started_at DESC, run_id DESC LIMIT max_runs),
    lane_keys AS (
        SELECT tr.tier_id, tr.name, tr.parallel, k.lane_pid, k.first_start
          FROM tiers tr
          LEFT JOIN LATERAL (SELECT r.lane_pid, min(r.started_at) AS first_start
                               FROM runs r WHERE r.tier_id = tr.tier_id GROUP BY r.lane_pid) k ON true),
    lane AS (
        SELECT lk.*, (row_number() OVER (ORDER BY lk.tier_id, lk.first_start NULLS FIRST, lk.lane_pid) - 1)::integer AS idx
          FROM lane_keys lk),
    bar AS (
        SELECT r.*, l.idx,
               x0 + greatest(0, extract(epoch FROM greatest(r.started_at, since) - since)) / span * plot_w AS x,
               x0 + least(span, extract(epoch FROM least(r.ended, until) - since)) / span * plot_w AS x_end
          FROM runs r
          JOIN lane l ON l.tier_id = r.tier_id AND l.lane_pid IS NOT DISTINCT FROM r.lane_pid),
    colour (status, fill, ord) AS (
        VALUES ('succeeded', '#2da44e', 1), ('failed', '#cf222e', 2), ('timed_out', '#e16f24', 3),
               ('crashed', '#8250df', 4), ('cancelled', '#8c959f', 5), ('skipped', '#d0d7de', 6),
               ('running', '#0969da', 7))
    SELECT (SELECT count(*) FROM overlapping),
           (SELECT count(*) FROM runs),
           (SELECT count(*) FROM lane),
           (SELECT string_agg(format('<rect x="0" y="%s" width="%s" height="%s" fill="%s"/>'
                                     '<text x="%s" y="%s" text-anchor="end" class="lane">%s</text>',
                                     y0 + l.idx * lane_h, width, lane_h,
                                     CASE WHEN l.idx % 2 = 0 THEN '#f6f8fa' ELSE '#ffffff' END,
                                     x0 - 8, y0 + l.idx * lane_h + 16,
                                     foreman._xml_text(l.name || CASE WHEN l.parallel AND l.lane_pid IS NOT NULL
                                                                      THEN ' / pid ' || l.lane_pid ELSE '' END)),
                              E'\n' ORDER BY l.idx)
              FROM lane l),
           (SELECT string_agg(format('<rect class="run" data-run-id="%s" data-status="%s" x="%s" y="%s" width="%s" '
                                     'height="%s" rx="2" fill="%s"><title>%s</title></rect>%s',
                                     b.run_id, b.status, round(b.x::numeric, 2), y0 + b.idx * lane_h + 4,
                                     round(greatest(b.x_end - b.x, 1.5)::numeric, 2), lane_h - 8,
                                     coalesce(c.fill, '#57606a'),
                                     foreman._xml_text(format('%s (%s): %s%s%s%s, started %s, %s%s%s',
                                         b.job_name, pg_get_userbyid(b.owner), b.status,
                                         CASE WHEN b.reason IS NOT NULL THEN ' (' || b.reason || ')' ELSE '' END,
                                         CASE WHEN b.sqlstate IS NOT NULL OR b.message IS NOT NULL
                                              THEN ': ' || concat_ws(' ', b.sqlstate,
                                                   CASE WHEN length(b.message) > 200 THEN left(b.message, 200) || '...'
                                                        ELSE b.message END)
                                              ELSE '' END,
                                         CASE WHEN b.attempt > 1 THEN ', attempt ' || b.attempt ELSE '' END,
                                         to_char(b.started_at, 'HH24:MI:SS.MS'),
                                         CASE WHEN b.open THEN 'not finished'
                                              ELSE foreman._duration_text(b.ended - b.started_at) END,
                                         CASE WHEN b.rows_affected IS NOT NULL
                                              THEN ', ' || b.rows_affected || ' rows' ELSE '' END,
                                         CASE WHEN b.chain_id IS NOT NULL
                                              THEN ', pipeline instance ' || b.chain_id ELSE '' END)),
                                     -- the job's name on a bar wide enough for it
                                     CASE WHEN b.x_end - b.x >= 7 * length(b.job_name) + 10
                                          THEN format('<text x="%s" y="%s" class="bar">%s</text>',
                                                      round(b.x::numeric + 5, 2), y0 + b.idx * lane_h + 16,
                                                      foreman._xml_text(b.job_name))
                                          ELSE '' END),
                              E'\n' ORDER BY b.started_at, b.run_id)
              FROM bar b LEFT JOIN colour c ON c.status = b.status),
           -- The runs of a pipeline instance, linked in the order they started.
           (SELECT string_agg(format('<line class="chain" data-chain-id="%s" x1="%s" y1="%s" x2="%s" y2="%s" '
                                     'stroke="#57606a" stroke-dasharray="3 2"/>',
                                     k.chain_id, round(k.px::numeric, 2), k.py, round(k.x::numeric, 2), k.y),
                              E'\n' ORDER BY k.started_at, k.run_id)
              FROM (SELECT b.chain_id, b.run_id, b.started_at, b.x, y0 + b.idx * lane_h + lane_h / 2 AS y,
                           lag(b.x_end) OVER w AS px, lag(y0 + b.idx * lane_h + lane_h / 2) OVER w AS py
                      FROM bar b WHERE b.chain_id IS NOT NULL
                    WINDOW w AS (PARTITION BY b.chain_id ORDER BY b.started_at, b.run_id)) k
             WHERE k.px IS NOT NULL),
           (SELECT string_agg(format('<rect x="%s" y="{legend_y}" width="12" height="12" rx="2" fill="%s"/>'
                                     '<text x="%s" y="{legend_text_y}">%s (%s)</text>',
                                     16 + (c.ord - 1) * 136, c.fill, 16 + (c.ord - 1) * 136 + 17, c.status,
                                     (SELECT count(*) FROM runs r WHERE r.status = c.status)),
                              E'\n' ORDER BY c.ord)
              FROM colour c)
      INTO n_total, n_drawn, n_lanes, lanes, bars, links, legend;

    plot_h := n_lanes * lane_h;
    legend := replace(replace(legend, '{legend_y}', (y0 + plot_h + 22)::text),
                      '{legend_text_y}', (y0 + plot_h + 32)::text);

    -- The time axis: at most 8 ticks on round times.
    SELECT min(s) INTO step FROM unnest(steps) s WHERE span / s <= 8;
    step := coalesce(step, ceil(span / 8 / 86400) * 86400);   -- past a few weeks: whole days
    tick_fmt := CASE WHEN step < 1 THEN 'HH24:MI:SS.MS' WHEN step < 60 THEN 'HH24:MI:SS'
                     WHEN step < 86400 THEN 'HH24:MI' ELSE 'MM-DD HH24:MI' END;
    SELECT string_agg(format('<line x1="%1$s" y1="%2$s" x2="%1$s" y2="%3$s" stroke="#d0d7de"/>'
                             '<text x="%1$s" y="%4$s" text-anchor="middle" class="tick">%5$s</text>',
                             round((x0 + (k * step - extract(epoch FROM since)) / span * plot_w)::numeric, 2),
                             y0 - 4, y0 + plot_h, y0 - 8, to_char(to_timestamp(k * step), tick_fmt)),
                      E'\n' ORDER BY k)
      INTO axis
      FROM generate_series(ceil(extract(epoch FROM since) / step)::bigint,
                           floor(extract(epoch FROM until) / step)::bigint) k;

    IF now() > since AND now() < until THEN
        now_mark := format('<line x1="%1$s" y1="%2$s" x2="%1$s" y2="%3$s" stroke="#0969da" stroke-dasharray="4 3"/>',
                           round((x0 + extract(epoch FROM now() - since) / span * plot_w)::numeric, 2),
                           y0 - 4, y0 + plot_h);
    END IF;

    header := format('<text x="16" y="24" class="title">%s</text>'
                     '<text x="16" y="42" class="sub">%s</text>',
                     foreman._xml_text(format('pg_foreman runs in database %s', current_database())),
                     foreman._xml_text(format('%s to %s (%s)%s',
                         to_char(since, 'YYYY-MM-DD HH24:MI:SS'), to_char(until, 'YYYY-MM-DD HH24:MI:SS'),
                         current_setting('TimeZone'),
                         CASE WHEN n_drawn < n_total
                              THEN format(', the latest %s of %s runs', n_drawn, n_total)
                              ELSE format(', %s runs', n_total) END)));

    RETURN format('<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
                  || '<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s">' || E'\n'
                  || '<style>text { font-family: DejaVu Sans, Verdana, sans-serif; font-size: 12px; fill: #24292f }'
                  || ' .title { font-size: 15px; font-weight: bold } .sub { fill: #57606a }'
                  || ' .tick { font-size: 11px; fill: #57606a }'
                  || ' .bar { font-size: 11px; fill: #ffffff; pointer-events: none }</style>' || E'\n'
                  || '<rect width="100%%" height="100%%" fill="#ffffff"/>' || E'\n'
                  || '%s' || E'\n' || '%s' || E'\n' || '%s' || E'\n' || '%s' || E'\n' || '%s%s' || E'\n'
                  || '</svg>' || E'\n',
                  width, y0 + plot_h + 48, width, y0 + plot_h + 48,
                  header, lanes, coalesce(axis, ''), coalesce(links || E'\n', '') || coalesce(bars, ''), legend, now_mark);
END
$$;
COMMENT ON FUNCTION foreman.timeline_svg(timestamptz, timestamptz, text, integer) IS
    'an SVG Gantt chart of the runs the caller may see: a lane per tier (per executor in parallel tiers), a bar per run';

-- Metrics for a Prometheus scraper: one row per sample, the metric's name,
-- its kind (counter or gauge), its labels and its value. doc/postgres_exporter.yaml
-- turns these into postgres_exporter custom queries; the README says how to
-- wire it. Jobs and runs as the caller sees them (grant foreman_monitor to
-- the exporter's role to see every job); tiers from shared memory.
CREATE VIEW foreman.metrics WITH (security_invoker = true) AS
WITH jobs AS (
    SELECT j.*, t.name AS tier_name,
           pg_catalog.jsonb_build_object('database', pg_catalog.current_database(), 'tier', t.name,
                                         'job', j.job_name, 'owner', pg_catalog.pg_get_userbyid(j.owner)) AS labels
      FROM foreman.job j JOIN foreman.tier t ON t.tier_id = j.tier_id),
coordinators AS (
    SELECT c.tier_id, bool_or(c.leader) AS has_leader,
           count(*) FILTER (WHERE c.leader AND c.current_job IS NOT NULL) AS running_job
      FROM foreman._coordinators() c GROUP BY c.tier_id),
executors AS (
    SELECT e.tier_id, count(*) AS n FROM foreman._executors() e GROUP BY e.tier_id),
tiers AS (
    SELECT t.tier_id, t.name, t.concurrency,
           pg_catalog.jsonb_build_object('database', pg_catalog.current_database(), 'tier', t.name) AS labels,
           coalesce(c.has_leader, false) AS has_leader,
           CASE WHEN t.concurrency > 1 THEN coalesce(e.n, 0) ELSE coalesce(c.running_job, 0) END AS slots_in_use,
           coalesce(st.stalls, 0) AS stalls
      FROM foreman.tier t
      LEFT JOIN coordinators c ON c.tier_id = t.tier_id
      LEFT JOIN executors e ON e.tier_id = t.tier_id
      LEFT JOIN foreman._tier_stalls() st ON st.tier_id = t.tier_id),
recent AS (
    SELECT s.tier, s.lag, s.busy_fraction FROM foreman.tier_stats(now() - interval '5 minutes') s)
SELECT 'foreman_job_runs_total'::text AS metric, 'counter'::text AS kind,
       j.labels || pg_catalog.jsonb_build_object('status', c.status) AS labels, c.n::float8 AS value
  FROM jobs j
 CROSS JOIN LATERAL (VALUES ('succeeded', j.runs_succeeded), ('failed', j.runs_failed),
                            ('timed_out', j.runs_timed_out), ('cancelled', j.runs_cancelled),
                            ('crashed', j.runs_crashed), ('skipped', j.runs_skipped)) AS c (status, n)
UNION ALL
SELECT 'foreman_job_last_success_age_seconds', 'gauge', j.labels,
       extract(epoch FROM now() - j.last_succeeded_at)::float8
  FROM jobs j WHERE j.last_succeeded_at IS NOT NULL
UNION ALL
SELECT 'foreman_job_consecutive_failures', 'gauge', j.labels, j.consecutive_failures::float8
  FROM jobs j
UNION ALL
SELECT 'foreman_job_enabled', 'gauge', j.labels, CASE WHEN j.enabled THEN 1 ELSE 0 END::float8
  FROM jobs j
UNION ALL
SELECT 'foreman_tier_lag_seconds', 'gauge', t.labels, extract(epoch FROM s.lag)::float8
  FROM tiers t JOIN recent s ON s.tier = t.name
UNION ALL
SELECT 'foreman_tier_busy_ratio', 'gauge', t.labels || '{"window": "5m"}'::jsonb, s.busy_fraction::float8
  FROM tiers t JOIN recent s ON s.tier = t.name
UNION ALL
SELECT 'foreman_tier_leader', 'gauge', t.labels, CASE WHEN t.has_leader THEN 1 ELSE 0 END::float8
  FROM tiers t
UNION ALL
SELECT 'foreman_tier_slots', 'gauge', t.labels, t.concurrency::float8
  FROM tiers t
UNION ALL
SELECT 'foreman_tier_slots_in_use', 'gauge', t.labels, t.slots_in_use::float8
  FROM tiers t
UNION ALL
SELECT 'foreman_tier_stalls_total', 'counter', t.labels, t.stalls::float8
  FROM tiers t;
COMMENT ON VIEW foreman.metrics IS
    'samples for Prometheus (metric, kind, labels, value); see doc/postgres_exporter.yaml';

-- Who may read what: statistics and the timeline as foreman.jobs (everyone,
-- row-level security decides which jobs); metrics read coordinator state
-- too, as tier_status does.
GRANT SELECT ON foreman.job_stats, foreman.tier_stats TO PUBLIC;
GRANT EXECUTE ON FUNCTION foreman.job_stats(timestamptz, timestamptz), foreman.tier_stats(timestamptz, timestamptz),
    foreman.timeline_svg(timestamptz, timestamptz, text, integer), foreman._xml_text(text),
    foreman._duration_text(interval) TO PUBLIC;
REVOKE ALL ON foreman.metrics FROM PUBLIC;
GRANT SELECT ON foreman.metrics TO foreman_user, pg_monitor, foreman_monitor;

-- ---- Scheduler hot path (issue 15) ----
--
-- The coordinator writes a job's row at every run (its next fire time when
-- the run starts, its summary when it ends). PostgreSQL evaluates every
-- CHECK constraint of a table at every UPDATE of a row, whatever columns it
-- changes, and reads each one's expression anew for every statement: the 11
-- of foreman.job were 15% of a coordinator's CPU per run (perf, test/bench).
-- The settings they guard are written by the API (which validates them
-- first, with its own errors) and by restores; this trigger checks them when
-- a row is inserted or one of them changes, as the constraints did, with
-- the same names and SQLSTATE 23514.
ALTER TABLE foreman.job
    DROP CONSTRAINT job_name_valid, DROP CONSTRAINT job_kind_valid, DROP CONSTRAINT job_schedule_kind_valid,
    DROP CONSTRAINT job_overlap_valid, DROP CONSTRAINT job_retries_valid, DROP CONSTRAINT job_max_catchup_valid,
    DROP CONSTRAINT job_max_instances_valid, DROP CONSTRAINT job_log_runs_valid,
    DROP CONSTRAINT job_command_not_empty, DROP CONSTRAINT job_notify_valid,
    DROP CONSTRAINT job_after_condition_valid;
CREATE FUNCTION foreman._job_settings_valid() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
BEGIN
    IF (length(NEW.job_name) BETWEEN 1 AND 63) IS FALSE THEN
        c := 'job_name_valid';
    END IF;
    IF (NEW.kind IN ('sql', 'expiry', 'purge')) IS FALSE THEN
        c := 'job_kind_valid';
    END IF;
    IF (NEW.schedule_kind IN ('interval', 'cron', 'once', 'reboot', 'after')) IS FALSE THEN
        c := 'job_schedule_kind_valid';
    END IF;
    IF (NEW.overlap IN ('skip', 'queue', 'allow')) IS FALSE THEN
        c := 'job_overlap_valid';
    END IF;
    IF (NEW.retries >= 0) IS FALSE THEN
        c := 'job_retries_valid';
    END IF;
    IF (NEW.max_catchup >= 1) IS FALSE THEN
        c := 'job_max_catchup_valid';
    END IF;
    IF (NEW.max_instances >= 1) IS FALSE THEN
        c := 'job_max_instances_valid';
    END IF;
    IF (NEW.log_runs IN ('all', 'failures', 'none')) IS FALSE THEN
        c := 'job_log_runs_valid';
    END IF;
    IF (length(NEW.command) > 0) IS FALSE THEN
        c := 'job_command_not_empty';
    END IF;
    IF (NEW.notify IN ('all', 'failures', 'none')) IS FALSE THEN
        c := 'job_notify_valid';
    END IF;
    IF (NEW.after_condition IN ('success', 'failure', 'completion')) IS FALSE THEN
        c := 'job_after_condition_valid';
    END IF;
    IF c IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "job" violates check constraint "%"', c
            USING ERRCODE = 'check_violation', SCHEMA = 'foreman', TABLE = 'job', CONSTRAINT = c;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION foreman._job_settings_valid() FROM PUBLIC;
CREATE TRIGGER job_settings_valid
    BEFORE INSERT OR UPDATE OF job_name, kind, schedule_kind, overlap, retries, max_catchup, max_instances,
                               log_runs, command, notify, after_condition
    ON foreman.job FOR EACH ROW EXECUTE FUNCTION foreman._job_settings_valid();

-- ---- end of scheduler hot path ----

-- ---- Expiry: keyset batches, index advice (issue 15) ----
-- The batches of a run each go on where the previous one stopped
-- (doc/maintenance.md, "One run"): in timestamp order after the last
-- (timestamp, key) locked when an index serves that order, else along the
-- heap after the last ctid locked, up to where the table ended when the run
-- began. Rows a batch skipped because another session held them, and rows
-- that moved behind a sweep, are the next run's: every run starts again from
-- the oldest row (or the first block). A batch on its own (expire_stale,
-- purge) still takes the oldest rows there are. On a plain table the locked
-- rows are changed through their ctid (a TID scan), their predicate checked
-- once more.

-- One batch of a run: the arguments of expire_stale / purge, and where the
-- previous batch stopped (NULL for the first). next_resume is where the next
-- one goes on, NULL when the run has nothing more to do. Opaque text[]:
-- {keyset, <timestamp>, <key>...} or {sweep, <ctid>, <end block>}.
CREATE FUNCTION foreman._expiry_batch(
    target regclass, older_than interval, status_column name, timestamp_column name,
    terminal_statuses text[], set_status text, batch_size integer, filter text, resume text[],
    OUT changed bigint, OUT next_resume text[])
RETURNS record
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'foreman_expiry_batch';
CREATE FUNCTION foreman._purge_batch(
    target regclass, timestamp_column name, older_than interval, batch_size integer, filter text,
    resume text[], OUT changed bigint, OUT next_resume text[])
RETURNS record
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'foreman_purge_batch';
COMMENT ON FUNCTION foreman._expiry_batch IS 'one batch of a run of a scheduled expiry, after the previous one';
COMMENT ON FUNCTION foreman._purge_batch IS 'one batch of a run of a scheduled purge, after the previous one';

-- One run of a scheduled expiry or purge: batch after batch, each committed
-- on its own (row locks live for one batch) and each after the last, until
-- the batches reach the end of the stale rows, max_batches ran, or the time
-- budget would be overrun by one more batch. The budget is max_runtime, else
-- the job's timeout (or its tier's default_timeout). Runs as its caller (the
-- job's owner): privileges are checked again at every batch.
--
-- A batch's commit does not wait for its WAL to reach the disk
-- (synchronous_commit off for that transaction only): a batch lost in a
-- crash leaves its rows as they were, and the next run expires them; the
-- run's own record, written after the last batch, is durable as ever, and
-- with it every batch before it.
CREATE OR REPLACE PROCEDURE foreman.run_maintenance(job_id bigint)
LANGUAGE plpgsql SECURITY INVOKER
AS $$
DECLARE
    m             foreman.maintenance;
    budget        interval;
    run_started   timestamptz := pg_catalog.clock_timestamp();
    batch_started timestamptz;
    longest       interval := '0';
    b             record;
    resume        text[];
    total         bigint := 0;
    batches       integer := 0;
BEGIN
    SELECT * INTO m FROM foreman.maintenance AS x WHERE x.job_id = run_maintenance.job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'maintenance job % does not exist', run_maintenance.job_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Scheduled expiry and purge jobs are made by foreman.schedule_expiry() and foreman.schedule_purge().';
    END IF;
    budget := coalesce(m.max_runtime, (SELECT coalesce(j.timeout, t.default_timeout)
                                         FROM foreman.job AS j JOIN foreman.tier AS t USING (tier_id)
                                        WHERE j.job_id = m.job_id));
    LOOP
        batch_started := pg_catalog.clock_timestamp();
        PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
        IF m.kind = 'expiry' THEN
            SELECT * INTO b FROM foreman._expiry_batch(m.target, m.older_than, m.status_column, m.timestamp_column,
                                                       m.terminal_statuses, m.set_status, m.batch_size, m.filter,
                                                       resume);
        ELSE
            SELECT * INTO b FROM foreman._purge_batch(m.target, m.timestamp_column, m.older_than, m.batch_size,
                                                      m.filter, resume);
        END IF;
        COMMIT;
        batches := batches + 1;
        total := total + b.changed;
        resume := b.next_resume;
        longest := greatest(longest, pg_catalog.clock_timestamp() - batch_started);
        -- After every batch, so a run cut short by its timeout still shows what it did.
        PERFORM foreman._report_run_totals(total, batches);
        PERFORM foreman._report_progress(pg_catalog.format('%s of %s: batch %s changed %s rows, %s in total',
                                                           m.kind, m.target, batches, b.changed, total));
        EXIT WHEN resume IS NULL OR batches >= m.max_batches;
        EXIT WHEN budget IS NOT NULL
              AND pg_catalog.clock_timestamp() - run_started + longest + m.batch_pause >= budget;
        IF m.batch_pause > interval '0' THEN
            PERFORM pg_catalog.pg_sleep(extract(epoch FROM m.batch_pause)::float8);
        END IF;
    END LOOP;
END
$$;

-- Index advice: how the batches of a target go ('keyset': in timestamp order
-- through index_name; 'sweep': along the heap, no index; 'scan': every batch
-- reads the whole table, a partitioned one without index) and the exact
-- CREATE INDEX to run when no index serves them well (NULL when one does).
CREATE FUNCTION foreman._expiry_advice(
    target regclass, older_than interval, status_column name, timestamp_column name,
    terminal_statuses text[], set_status text, batch_size integer, filter text,
    OUT batches text, OUT index_name name, OUT advice text)
RETURNS record
LANGUAGE C CALLED ON NULL INPUT STABLE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'foreman_expiry_advice';
CREATE FUNCTION foreman._purge_advice(
    target regclass, timestamp_column name, older_than interval, batch_size integer, filter text,
    OUT batches text, OUT index_name name, OUT advice text)
RETURNS record
LANGUAGE C CALLED ON NULL INPUT STABLE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'foreman_purge_advice';
CREATE FUNCTION foreman._maintenance_advice(m foreman.maintenance,
    OUT batches text, OUT index_name name, OUT advice text)
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF m.kind = 'expiry' THEN
        SELECT a.batches, a.index_name, a.advice INTO batches, index_name, advice
          FROM foreman._expiry_advice(m.target, m.older_than, m.status_column, m.timestamp_column,
                                      m.terminal_statuses, m.set_status, m.batch_size, m.filter) AS a;
    ELSE
        SELECT a.batches, a.index_name, a.advice INTO batches, index_name, advice
          FROM foreman._purge_advice(m.target, m.timestamp_column, m.older_than, m.batch_size, m.filter) AS a;
    END IF;
EXCEPTION WHEN undefined_table OR undefined_column OR datatype_mismatch OR syntax_error THEN
    -- The table or a column changed since the job was scheduled: say why, as a comment.
    advice := format('-- no advice: %s', SQLERRM);
END
$$;
CREATE VIEW foreman.maintenance_advice WITH (security_invoker = true) AS
SELECT j.job_name, m.job_id, m.kind, m.target, a.batches, a.index_name, a.advice
  FROM foreman.maintenance AS m
  JOIN foreman.job AS j USING (job_id)
 CROSS JOIN LATERAL foreman._maintenance_advice(m) AS a;
COMMENT ON VIEW foreman.maintenance_advice IS
    'per scheduled expiry or purge: how its batches go, the index that serves them, the CREATE INDEX to run when none serves them well';
GRANT SELECT ON foreman.maintenance_advice TO PUBLIC;

-- ---- end of expiry: keyset batches, index advice ----

-- ---- sequences: logged ahead as they are used ----
-- Under wal_level = minimal, a relation created in a transaction is not
-- WAL-logged as it changes: its pages are logged once, as images, at commit.
-- A sequence used in the transaction that created it (CREATE EXTENSION's:
-- foreman.tier's default tiers take their ids) is thus logged saying that
-- its next values were logged ahead already (log_cnt), and nextval in later
-- transactions writes no WAL until they are used up: a crash before the
-- next checkpoint gave those ids again ("duplicate key value violates unique
-- constraint tier_pkey" from create_tier after a crash-restart). setval to a
-- sequence's own state clears that count, so that the next nextval logs.
-- Only the sequences this transaction created (a fresh install; age(xmin) =
-- 0): those of an installed catalog being updated are left alone, where a
-- concurrent nextval could fall between the read and the setval.
DO $$
DECLARE
    s regclass;
BEGIN
    FOR s IN SELECT c.oid FROM pg_catalog.pg_class c
              WHERE c.relnamespace = 'foreman'::regnamespace AND c.relkind = 'S' AND pg_catalog.age(c.xmin) = 0
    LOOP
        EXECUTE format('SELECT pg_catalog.setval(%L, last_value, is_called) FROM %s', s, s);
    END LOOP;
END
$$;
