-- Every schedule kind, and foreman.next_runs() to check one before trusting it.
SET timezone = 'UTC';
-- Jobs that start in 2030 have fire times that do not depend on today.
CREATE FUNCTION pg_temp.fires(job text, n int DEFAULT 4) RETURNS SETOF text LANGUAGE sql AS
$$ SELECT to_char(t, 'YYYY-MM-DD HH24:MI:SS TZ') FROM foreman.next_runs(job, n) t $$;

-- Intervals, down to 100 milliseconds, anchored at start_at.
SELECT foreman.schedule('every_250ms', '250 milliseconds', 'SELECT 1', start_at => '2030-01-01 00:00:00+00') IS NOT NULL AS scheduled;
SELECT to_char(t, 'HH24:MI:SS.MS') AS fire FROM foreman.next_runs('every_250ms', 4) t;
SELECT foreman.schedule('every_90min', '1 hour 30 minutes', 'SELECT 1', start_at => '2030-01-01 00:00:00+00') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('every_90min');

-- Cron: five fields, evaluated in the job's time zone.
SELECT foreman.schedule('quarter_hours', '*/15 * * * *', 'SELECT 1', start_at => '2030-01-01 00:00:00+00', time_zone => 'UTC') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('quarter_hours');
SELECT foreman.schedule('weekday_nine', '0 9 * * mon-fri', 'SELECT 1', start_at => '2030-01-04 00:00:00+00', time_zone => 'America/New_York') IS NOT NULL AS scheduled;
SELECT to_char(t AT TIME ZONE 'America/New_York', 'Dy YYYY-MM-DD HH24:MI') AS new_york FROM foreman.next_runs('weekday_nine', 4) t;
-- Six fields: seconds first.
SELECT foreman.schedule('ten_seconds', '*/10 * * * * *', 'SELECT 1', start_at => '2030-01-01 00:00:00+00', time_zone => 'UTC') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('ten_seconds');
-- L: the last day of the month, leap years included.
SELECT foreman.schedule('month_end', '0 23 L * *', 'SELECT 1', start_at => '2028-01-15 00:00:00+00', time_zone => 'UTC') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('month_end', 3);
-- Shorthands.
SELECT foreman.schedule('daily', '@daily', 'SELECT 1', start_at => '2030-01-01 00:00:00+00', time_zone => 'UTC') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('daily', 2);
SELECT foreman.schedule('hourly', '@hourly', 'SELECT 1', start_at => '2030-01-01 00:00:00+00', time_zone => 'UTC') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('hourly', 2);

-- Daylight saving time: 02:30 does not exist in Berlin on 2030-03-31 and
-- runs once at the first valid instant; on 2030-10-27 it exists twice and
-- runs once, at the first.
SELECT foreman.schedule('berlin_0230', '30 2 * * *', 'SELECT 1', start_at => '2030-03-30 00:00:00+00', time_zone => 'Europe/Berlin') IS NOT NULL AS scheduled;
SELECT to_char(t AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD HH24:MI') AS berlin, to_char(t, 'HH24:MI TZ') AS utc FROM foreman.next_runs('berlin_0230', 3) t;
SELECT foreman.alter_job('berlin_0230', start_at => '2030-10-26 00:00:00+00');
SELECT to_char(t AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD HH24:MI') AS berlin, to_char(t, 'HH24:MI TZ') AS utc FROM foreman.next_runs('berlin_0230', 3) t;

-- @once at start_at fires once; end_at ends a schedule.
SELECT foreman.schedule('once', '@once', 'SELECT 1', start_at => '2030-06-01 12:00:00+00') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('once', 3);
SELECT foreman.schedule('bounded', '1 hour', 'SELECT 1', start_at => '2030-01-01 00:00:00+00', end_at => '2030-01-01 02:30:00+00') IS NOT NULL AS scheduled;
SELECT pg_temp.fires('bounded', 5);
-- @reboot has no fire time of its own: it runs when its tier's coordinator starts.
SELECT foreman.schedule('on_start', '@reboot', 'SELECT 1') IS NOT NULL AS scheduled;
SELECT count(*) AS fire_times FROM foreman.next_runs('on_start', 3);

-- The default tier follows the period: up to 60 s is 'fast'.
SELECT foreman.schedule('every_minute', '* * * * *', 'SELECT 1', start_at => '2030-01-01 00:00:00+00') IS NOT NULL AS scheduled;
SELECT job_name, schedule_kind, tier FROM foreman.jobs
 WHERE job_name IN ('every_minute', 'ten_seconds', 'hourly', 'once', 'every_250ms') ORDER BY job_name;

-- Jitter: a phase drawn once in [0, jitter), kept while the schedule stays.
SELECT foreman.schedule('jittered', '1 hour', 'SELECT 1', jitter => '10 minutes', start_at => '2030-01-01 00:00:00+00') IS NOT NULL AS scheduled;
SELECT phase >= '0' AND phase < '10 minutes' AS phase_in_window FROM foreman.jobs WHERE job_name = 'jittered';
SELECT phase AS phase_before FROM foreman.jobs WHERE job_name = 'jittered' \gset
SELECT foreman.alter_job('jittered', command => 'SELECT 2');
SELECT phase = :'phase_before' AS phase_kept FROM foreman.jobs WHERE job_name = 'jittered';
SELECT bool_and(t = '2030-01-01 00:00:00+00'::timestamptz + :'phase_before'::interval + (n - 1) * interval '1 hour') AS on_the_jittered_grid
  FROM foreman.next_runs('jittered', 3) WITH ORDINALITY AS r(t, n);

-- Malformed schedules: a clear error (22023) each, nothing written.
SELECT count(*) AS jobs_before FROM foreman.job WHERE job_name NOT LIKE 'foreman.%' \gset
SELECT foreman.schedule('bad', '', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '* * * * * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '61 * * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '*/0 * * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '0 0 1 foo *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '0 24 * * *', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '@fortnightly', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '-1 second', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '0 9 * * *', 'SELECT 1', time_zone => 'Atlantis/Capital');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '0 9 * * *', 'SELECT 1', start_at => '2030-01-02', end_at => '2030-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '1 hour', 'SELECT 1', max_catchup => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '1 hour', 'SELECT 1', log_runs => 'some');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman.schedule('bad', '1 hour', 'SELECT 1', max_failures => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) = :jobs_before AS nothing_written FROM foreman.job WHERE job_name NOT LIKE 'foreman.%';
SELECT * FROM foreman.next_runs('no_such_job', 3);
\echo :LAST_ERROR_SQLSTATE

SELECT foreman.unschedule(job_name) FROM foreman.jobs WHERE job_name NOT LIKE 'foreman.%' ORDER BY job_name;
