-- What an operator sees: foreman.job_stats and foreman.tier_stats over a
-- window, the run counters behind foreman.metrics, foreman.timeline_svg(),
-- and who sees which of it.
SET IntervalStyle = postgres;
SET DateStyle = ISO;
\set VERBOSITY terse
CREATE ROLE regress_obs_u1 LOGIN IN ROLE foreman_user;
CREATE ROLE regress_obs_u2 LOGIN IN ROLE foreman_user;
CREATE ROLE regress_obs_monitor LOGIN IN ROLE foreman_monitor;
CREATE ROLE regress_obs_nobody LOGIN;

-- Two tiers nobody runs (disabled), so the history below is all there is.
-- They "exist" since before the window, as a tier in service would.
SELECT foreman.create_tier('obs_seq', '10 seconds') > 0 AS created;
SELECT foreman.create_tier('obs_par', '10 seconds', concurrency => 2) > 0 AS created;
SELECT foreman.alter_tier('obs_seq', enabled => false), foreman.alter_tier('obs_par', enabled => false);
UPDATE foreman.tier SET created_at = '2024-12-01 00:00:00+00' WHERE name LIKE 'obs_%';

SET ROLE regress_obs_u1;
SELECT foreman.schedule('nightly_report', '1 day', 'SELECT 1', tier => 'obs_seq', enabled => false) > 0 AS scheduled;
SELECT foreman.schedule('thumbnails', '1 hour', 'SELECT 1', tier => 'obs_par', enabled => false) > 0 AS scheduled;
SET ROLE regress_obs_u2;
SELECT foreman.schedule('u2_export', '1 hour', 'SELECT 1', tier => 'obs_seq', enabled => false) > 0 AS scheduled;
RESET ROLE;

-- A recorded history inside the hour [2025-01-01 00:00, 01:00) UTC, written
-- the way the coordinator writes it (a run row, its outcome), with its
-- search_path: a row written with another is taken for a restored one.
CREATE PROCEDURE add_run(job text, status text, started timestamptz, took interval, delay interval,
                         pid integer DEFAULT 4242, rows bigint DEFAULT NULL, sqlstate text DEFAULT NULL,
                         message text DEFAULT NULL, reason text DEFAULT NULL)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO foreman.job_run (job_id, job_name, owner, owner_name, tier_id, pid, status, reason, scheduled_for,
                                 started_at, finished_at, rows_affected, sqlstate, message)
    SELECT j.job_id, j.job_name, j.owner, j.owner_name, j.tier_id, pid, status, reason, started - delay,
           started, started + took, rows, sqlstate, message
      FROM foreman.job j WHERE j.job_name = job
$$;
CALL add_run('nightly_report', 'succeeded', '2024-12-31 23:40:00+00', '30 minutes', '0.010 s', rows => 100);
CALL add_run('nightly_report', 'succeeded', '2025-01-01 00:10:00+00', '0.100 s', '0.010 s', rows => 10);
CALL add_run('nightly_report', 'succeeded', '2025-01-01 00:11:00+00', '0.200 s', '0.020 s', rows => 20);
CALL add_run('nightly_report', 'succeeded', '2025-01-01 00:12:00+00', '0.300 s', '0.030 s', rows => 30);
CALL add_run('nightly_report', 'succeeded', '2025-01-01 00:13:00+00', '0.400 s', '0.040 s', rows => 40);
CALL add_run('nightly_report', 'failed', '2025-01-01 00:20:00+00', '10 minutes', '0.050 s',
             sqlstate => '22012', message => 'division by zero');
CALL add_run('nightly_report', 'timed_out', '2025-01-01 00:31:00+00', '1 minute', '2 seconds',
             sqlstate => '57014', message => 'canceling statement due to the job''s timeout (60000 ms)');
CALL add_run('nightly_report', 'skipped', '2025-01-01 00:35:00+00', '0', '0',
             message => 'the previous run was still going', reason => 'overlap');
CALL add_run('nightly_report', 'crashed', '2025-01-01 00:40:00+00', '1 second', '0.060 s',
             message => 'process ended', reason => 'process ended');
-- Still running at the window's end (no end yet).
CALL add_run('nightly_report', 'running', '2025-01-01 00:50:00+00', '0', '0.070 s');
UPDATE foreman.job_run SET finished_at = NULL WHERE status = 'running' AND job_name = 'nightly_report';
CALL add_run('u2_export', 'succeeded', '2025-01-01 00:05:00+00', '1 minute', '0.5 s', rows => 7);
CALL add_run('thumbnails', 'succeeded', '2025-01-01 00:00:00+00', '30 minutes', '0', pid => 101);
CALL add_run('thumbnails', 'succeeded', '2025-01-01 00:00:00+00', '15 minutes', '0', pid => 102);
CALL add_run('thumbnails', 'failed', '2025-01-01 00:40:00+00', '5 minutes', '0', pid => 102,
             sqlstate => '42P01', message => 'relation "pictures" does not exist');

-- Per job over the window: the runs that started in it (a fire time that was
-- skipped is not a run), outcomes, success ratio (succeeded / succeeded +
-- failed + timed out + crashed), duration percentiles over finished runs,
-- start delay (started - scheduled) of every run, rows, and the latest error.
SELECT job_name, owner, tier, window_size, runs, succeeded, failed, timed_out, cancelled, crashed, skipped,
       running, success_ratio
  FROM foreman.job_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00') WHERE job_id > 0 ORDER BY job_name;
SELECT job_name, duration_p50, duration_p95, duration_p99, duration_max,
       start_delay_p50, start_delay_p95, start_delay_max, rows_affected
  FROM foreman.job_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00') WHERE job_id > 0 ORDER BY job_name;
SELECT job_name, last_error_at, last_error_sqlstate, last_error_message
  FROM foreman.job_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00') WHERE job_id > 0 ORDER BY job_name;
-- An open-ended window: everything; its size is not a number.
SELECT job_name, window_size, runs FROM foreman.job_stats('-infinity', 'infinity') WHERE job_id > 0 ORDER BY job_name;
-- An empty window: every job, no runs.
SELECT job_name, runs, skipped, success_ratio, duration_p50
  FROM foreman.job_stats('2020-01-01 00:00:00+00', '2020-01-01 01:00:00+00') WHERE job_id > 0 ORDER BY job_name;
-- The view: the last hour and the last day of each job.
SELECT job_name, window_size, runs FROM foreman.job_stats WHERE job_id > 0 ORDER BY job_name, window_size;

-- Per tier: busy is the time runs ran inside the window (the run that began
-- before it counts from the window's start, the one still running to the
-- window's end), over the window times the tier's concurrency.
-- obs_seq: 10 min of the run begun before + 1 s + 10 min + 1 min + 1 s + 10 min
-- still running + u2's 1 min = 32:02 of 60:00; obs_par: 30 + 15 + 5 min of 2 x 60.
SELECT tier, concurrency, window_size, runs, failures, skipped, running, busy, busy_fraction,
       start_delay_p50, start_delay_max
  FROM foreman.tier_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00')
 WHERE tier LIKE 'obs_%' ORDER BY tier;
-- Nothing is due in a disabled tier: no lag.
SELECT tier, lag FROM foreman.tier_stats WHERE tier LIKE 'obs_%' ORDER BY tier, window_size;

-- Each role sees its own jobs' statistics; foreman_monitor sees every job
-- (and may change none); a role without a grant sees nothing.
SET ROLE regress_obs_u2;
SELECT job_name, runs FROM foreman.job_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00') ORDER BY job_name;
SELECT tier, runs, busy FROM foreman.tier_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00')
 WHERE tier = 'obs_seq';
SET ROLE regress_obs_monitor;
SELECT job_name, runs FROM foreman.job_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00')
 WHERE job_id > 0 ORDER BY job_name;
SELECT count(*) AS runs_monitor_sees FROM foreman.runs WHERE tier LIKE 'obs_%';
SELECT foreman.alter_job('nightly_report', enabled => true);
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_obs_nobody;
SELECT count(*) AS jobs_nobody_sees FROM foreman.job_stats('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00');
RESET ROLE;

-- Counters: every finished run is counted on its job when its summary is
-- written, skipped fire times when they are recorded, by the coordinator's
-- own statements; they never go down, whatever the history keeps. The
-- recorded history above was inserted directly: none of it is counted.
SELECT job_name, runs_succeeded, runs_failed, runs_timed_out, runs_cancelled, runs_crashed, runs_skipped,
       last_succeeded_at
  FROM foreman.job WHERE job_name IN ('nightly_report', 'thumbnails') ORDER BY job_name;
-- Real runs: one succeeds, one fails; removing their history leaves the counters be.
SELECT clock_timestamp() AS t0 \gset
SET ROLE regress_obs_u1;
SELECT foreman.schedule('counted_ok', '1 hour', 'SELECT 1') > 0 AS scheduled;
SELECT foreman.schedule('counted_bad', '1 hour', 'SELECT 1/0') > 0 AS scheduled;
SELECT status FROM foreman.wait_for_run('counted_ok', :'t0');
SELECT status FROM foreman.wait_for_run('counted_bad', :'t0');
RESET ROLE;
DELETE FROM foreman.job_run WHERE job_name LIKE 'counted_%';
SELECT job_name, runs_succeeded, runs_failed, last_succeeded_at IS NOT NULL AS has_last_success
  FROM foreman.job WHERE job_name LIKE 'counted_%' ORDER BY job_name;
SELECT job_name, last_success_at IS NOT NULL AS has_last_success, last_error_sqlstate
  FROM foreman.job_stats(:'t0') WHERE job_name LIKE 'counted_%' ORDER BY job_name;

-- foreman.metrics: one row per sample for a scraper (doc/postgres_exporter.yaml).
SELECT labels ->> 'status' AS status, value
  FROM foreman.metrics
 WHERE metric = 'foreman_job_runs_total' AND labels ->> 'job' = 'counted_bad' ORDER BY 1;
SELECT metric, kind, count(*) > 0 AS present
  FROM foreman.metrics GROUP BY metric, kind ORDER BY metric;
SELECT metric, labels - 'database' AS labels, value
  FROM foreman.metrics WHERE labels ->> 'tier' = 'obs_par' AND metric LIKE 'foreman_tier_%' ORDER BY metric;
SELECT value >= 0 AND value < 3600 AS recent
  FROM foreman.metrics WHERE metric = 'foreman_job_last_success_age_seconds' AND labels ->> 'job' = 'counted_ok';
-- Jobs as the caller sees them; tiers for every reader; nothing without a grant.
SET ROLE regress_obs_u2;
SELECT DISTINCT labels ->> 'job' AS job FROM foreman.metrics WHERE labels ? 'job' ORDER BY 1;
SET ROLE regress_obs_monitor;
SELECT count(DISTINCT labels ->> 'job') >= 5 AS monitor_sees_all FROM foreman.metrics WHERE labels ? 'job';
SET ROLE regress_obs_nobody;
SELECT count(*) FROM foreman.metrics;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_obs_u1;
SELECT foreman.unschedule('counted_ok'), foreman.unschedule('counted_bad');
RESET ROLE;

-- The timeline: an SVG document, a lane per tier (per process in a parallel
-- tier), a bar per run coloured by its outcome with a tooltip, an axis and a
-- legend. The hour above, tier obs_seq (run ids left out here):
\a
\t on
SELECT regexp_replace(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00', 'obs_seq'),
                      'data-run-id="[0-9]+"', 'data-run-id="(run_id)"', 'g');
\t off
\a
-- Well-formed XML, one bar per run the caller may see.
CREATE FUNCTION svg_bars(svg text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(b::text, ',' ORDER BY b::text::bigint)
      FROM unnest(xpath('//s:rect[@class="run"]/@data-run-id', xmlparse(DOCUMENT svg),
                        '{{s,http://www.w3.org/2000/svg}}')) b
$$;
SELECT xml_is_well_formed_document(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00')) AS well_formed;
SELECT svg_bars(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00'))
     = (SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM foreman.job_run
         WHERE coalesce(finished_at, 'infinity') >= '2025-01-01 00:00:00+00' AND started_at < '2025-01-01 01:00:00+00')
       AS one_bar_per_run;
-- Lanes: obs_seq, then obs_par per process.
SELECT string_agg(l::text, ' | ')
  FROM unnest(xpath('//s:text[@class="lane"]/text()',
                    xmlparse(DOCUMENT foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00')),
                    '{{s,http://www.w3.org/2000/svg}}')) l;
-- Another role's runs are not in it.
SET ROLE regress_obs_u2;
SELECT svg_bars(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00'))
     = (SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM foreman.job_run WHERE job_name = 'u2_export')
       AS only_own_bars,
       position('nightly_report' IN foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00')) AS names_other_job;
RESET ROLE;
-- At most max_runs bars, the latest; the picture says so.
SELECT svg_bars(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00', 'obs_seq', max_runs => 2))
     = (SELECT string_agg(run_id::text, ',' ORDER BY run_id) FROM
          (SELECT run_id FROM foreman.job_run WHERE tier_id = (SELECT tier_id FROM foreman.tier WHERE name = 'obs_seq')
              AND started_at < '2025-01-01 01:00:00+00' ORDER BY started_at DESC LIMIT 2) x) AS latest_two,
       substring(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00', 'obs_seq', max_runs => 2)
                 FROM 'the latest [0-9]+ of [0-9]+ runs') AS says;

-- Job names are user text: markup, quotes and control characters end up
-- escaped (non-ASCII letters too, in a UTF8 database: TAP 070).
SET ROLE regress_obs_u1;
SELECT foreman.schedule(E'<b>"Tom''s" & co</b>\x01', '1 day', 'SELECT 1', tier => 'obs_seq', enabled => false) > 0 AS scheduled;
RESET ROLE;
CALL add_run(E'<b>"Tom''s" & co</b>\x01', 'failed', '2025-01-01 00:58:00+00', '1 second', '0',
             sqlstate => 'P0001', message => E'bad <input> & "quotes"\nsecond line');
SELECT xml_is_well_formed_document(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00', 'obs_seq')) AS well_formed;
SELECT substring(foreman.timeline_svg('2025-01-01 00:00:00+00', '2025-01-01 01:00:00+00', 'obs_seq')
                 FROM '<title>&lt;b&gt;[^<]*</title>') AS tooltip;

-- Bad input: a clear error with a SQLSTATE.
SELECT foreman.timeline_svg('2025-01-01 01:00:00+00', '2025-01-01 00:00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.timeline_svg('-infinity', now());
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.timeline_svg(tier => 'no_such_tier');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.timeline_svg(max_runs => 0);
\echo :LAST_ERROR_SQLSTATE
-- With no arguments: the last ten minutes.
SELECT xml_is_well_formed_document(foreman.timeline_svg()) AS well_formed;

-- Clean up.
SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE tier LIKE 'obs_%' ORDER BY job_name;
DELETE FROM foreman.job_run WHERE tier_id IN (SELECT tier_id FROM foreman.tier WHERE name LIKE 'obs_%');
SELECT foreman.drop_tier('obs_seq'), foreman.drop_tier('obs_par');
DROP FUNCTION svg_bars(text);
DROP PROCEDURE add_run;
DROP ROLE regress_obs_u1, regress_obs_u2, regress_obs_monitor, regress_obs_nobody;
