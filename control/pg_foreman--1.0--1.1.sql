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
