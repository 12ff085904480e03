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
SELECT c.chain_id, root.job_name AS root_job, r.run_id, r.job_id, r.job_name, t.name AS tier, r.status, r.reason,
       r.started_at, r.finished_at, r.message
  FROM foreman.job_run r
  JOIN foreman.job_run root ON root.run_id = r.chain_id
  JOIN (SELECT DISTINCT chain_id FROM foreman.job_run WHERE chain_id IS NOT NULL) c ON c.chain_id = r.chain_id
  LEFT JOIN foreman.tier t ON t.tier_id = r.tier_id
 WHERE pg_catalog.pg_has_role(r.owner, 'USAGE') OR pg_catalog.pg_has_role('foreman_admin', 'USAGE')
UNION ALL
SELECT q.chain_id, root.job_name, NULL, q.job_id, j.job_name, t.name, 'queued', 'its upstreams ended',
       NULL, NULL, format('requested %s', q.requested_at)
  FROM foreman.chain_request q
  JOIN foreman.job j ON j.job_id = q.job_id
  JOIN foreman.tier t ON t.tier_id = j.tier_id
  LEFT JOIN foreman.job_run root ON root.run_id = q.chain_id
 WHERE pg_catalog.pg_has_role(j.owner, 'USAGE') OR pg_catalog.pg_has_role('foreman_admin', 'USAGE')
UNION ALL
SELECT w.chain_id, root.job_name, NULL, w.job_id, j.job_name, t.name, 'waiting', 'for its other upstreams',
       NULL, NULL, string_agg(format('%s %s', coalesce(u.job_name, w.upstream_id::text), w.outcome), ', ')
  FROM foreman.chain_wait w
  JOIN foreman.job j ON j.job_id = w.job_id
  JOIN foreman.tier t ON t.tier_id = j.tier_id
  LEFT JOIN foreman.job u ON u.job_id = w.upstream_id
  LEFT JOIN foreman.job_run root ON root.run_id = w.chain_id
 WHERE pg_catalog.pg_has_role(j.owner, 'USAGE') OR pg_catalog.pg_has_role('foreman_admin', 'USAGE')
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
