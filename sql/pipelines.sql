-- Pipelines: jobs that run after other jobs. A run no upstream caused starts
-- an instance; each downstream runs once per instance when its upstreams
-- have ended and its after_condition holds, in its own tier; otherwise it is
-- skipped, and so are the jobs after it.
CREATE TABLE pipeline_log (step text, at timestamptz DEFAULT clock_timestamp());
\set VERBOSITY terse

-- load -> transform -> (refresh_a in fast, refresh_b in slow) -> vacuum_step,
-- made in one transaction (load's first run is at once).
BEGIN;
SELECT foreman.schedule('load', '1 hour', $$INSERT INTO pipeline_log (step) VALUES ('load')$$, tier => 'fast') > 0 AS scheduled;
SELECT foreman.schedule('transform', '@after', $$INSERT INTO pipeline_log (step) VALUES ('transform')$$,
                        tier => 'slow', after => ARRAY['load']) > 0 AS scheduled;
SELECT foreman.schedule('refresh_a', '@after', $$INSERT INTO pipeline_log (step) VALUES ('refresh_a')$$,
                        tier => 'fast', after => ARRAY['transform']) > 0 AS scheduled;
SELECT foreman.schedule('refresh_b', '@after', $$INSERT INTO pipeline_log (step) VALUES ('refresh_b')$$,
                        tier => 'slow', after => ARRAY['transform']) > 0 AS scheduled;
SELECT foreman.schedule('vacuum_step', '@after', $$INSERT INTO pipeline_log (step) VALUES ('vacuum')$$,
                        tier => 'fast', after => ARRAY['refresh_a', 'refresh_b']) > 0 AS scheduled;
COMMIT;
SELECT job_name, schedule, tier, after, after_condition FROM foreman.jobs
 WHERE job_name IN ('load', 'transform', 'refresh_a', 'refresh_b', 'vacuum_step') ORDER BY job_id;
SELECT * FROM foreman.next_runs('vacuum_step');

-- The first run of load (scheduled at once) starts an instance; the rest follow.
SELECT status FROM foreman.wait_for_run('vacuum_step', now() - interval '1 minute');
SELECT string_agg(step, ' < ' ORDER BY at) FILTER (WHERE step IN ('load', 'transform')) AS first_steps,
       max(at) FILTER (WHERE step = 'transform') < min(at) FILTER (WHERE step = 'refresh_a')
   AND max(at) FILTER (WHERE step = 'transform') < min(at) FILTER (WHERE step = 'refresh_b') AS fanned_out_after_transform,
       max(at) FILTER (WHERE step IN ('refresh_a', 'refresh_b')) < min(at) FILTER (WHERE step = 'vacuum') AS fanned_in_before_vacuum
  FROM pipeline_log;
SELECT root_job, job_name, tier, status FROM foreman.chain_runs ORDER BY job_id;
SELECT count(DISTINCT chain_id) AS instances, count(*) AS runs FROM foreman.chain_runs;
-- The timeline links the runs of the instance in the order they started:
-- five runs, four links.
SELECT (SELECT min(chain_id) FROM foreman.chain_runs) AS first_chain \gset
SELECT (length(svg) - length(replace(svg, format('class="chain" data-chain-id="%s"', :first_chain), '')))
       / length(format('class="chain" data-chain-id="%s"', :first_chain)) AS links,
       svg LIKE '%pipeline instance%' AS tooltips_name_it
  FROM foreman.timeline_svg(now() - interval '10 minutes', now()) svg;

-- A failure in the middle: the steps after it are skipped, naming why; a job
-- that runs after a failure runs.
SELECT foreman.alter_job('transform', command => 'SELECT 1/0');
SELECT foreman.schedule('alert', '@after', $$INSERT INTO pipeline_log (step) VALUES ('alert')$$,
                        after => ARRAY['transform'], after_condition => 'failure') > 0 AS scheduled;
SELECT clock_timestamp() AS before_second \gset
SELECT foreman.run_now('load');
SELECT status FROM foreman.wait_for_run('alert', :'before_second');
SELECT status, reason, message FROM foreman.wait_for_run('vacuum_step', :'before_second');
SELECT job_name, status, reason FROM foreman.chain_runs
 WHERE chain_id = (SELECT max(chain_id) FROM foreman.chain_runs) ORDER BY job_id;

-- run_now of a job in the middle runs it and what follows it.
SELECT foreman.alter_job('transform', command => $$INSERT INTO pipeline_log (step) VALUES ('transform')$$);
SELECT clock_timestamp() AS before_middle \gset
SELECT foreman.run_now('refresh_b');
SELECT status FROM foreman.wait_for_run('vacuum_step', :'before_middle');
SELECT root_job, string_agg(job_name, ', ' ORDER BY run_id) AS ran FROM foreman.chain_runs
 WHERE chain_id = (SELECT max(chain_id) FROM foreman.chain_runs) GROUP BY root_job;

-- Errors: a cycle, an unknown or invisible upstream, itself, no upstream for
-- '@after', a bad condition; removing or pausing a job others run after.
SELECT foreman.alter_job('load', after => ARRAY['vacuum_step']);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('load', after => ARRAY['load']);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('orphan', '@after', 'SELECT 1', after => ARRAY['no_such_job']);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('orphan', '@after', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('orphan', '@after', 'SELECT 1', after => ARRAY['load'], after_condition => 'sometimes');
\echo :LAST_ERROR_SQLSTATE
CREATE ROLE regress_pipe_user LOGIN IN ROLE foreman_user;
SET ROLE regress_pipe_user;
SELECT foreman.schedule('mine', '@after', 'SELECT 1', after => ARRAY['load']);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT foreman.unschedule('transform');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('refresh_a', enabled => false);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.alter_job('refresh_a', enabled => false, cascade => true);
SELECT job_name, enabled FROM foreman.jobs WHERE job_name IN ('refresh_a', 'vacuum_step') ORDER BY job_name;
SELECT foreman.unschedule('load', cascade => true);
SELECT count(*) AS jobs_left FROM foreman.jobs WHERE job_name IN ('load', 'transform', 'refresh_a', 'refresh_b',
                                                                   'vacuum_step', 'alert');

DROP ROLE regress_pipe_user;
DROP TABLE pipeline_log;
