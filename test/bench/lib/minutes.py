"""minutes.py: the minute-boundary phase of the benchmark (targets 1, 3, 4, 5).

pg_cron fires at whole minutes only, so the phase is a run of minutes, each
with pg_cron's slot at :00 and pg_foreman's around it:

  :00  pg_cron: 100 jobs (CPU per run, start delays) or 1 job (start delay)
  gap  pg_foreman's single job, every second (start delay, target 3)
  :30  pg_foreman: 100 jobs in the sequential tier `fast` (targets 1, 4)
  gap  nothing due anywhere: the cluster's idle CPU (the baseline)
  :45  pg_foreman: 100 jobs in the parallel tier `par`, concurrency 8 (target 5)
  gap  pg_foreman's single job again

Minutes: BOUNDARIES with pg_cron in libpq mode, one with its single job, a
restart with cron.use_background_workers = on, one with its single job, and
BOUNDARIES more (2 + 2 x BOUNDARIES minutes; 6 by default).

Every window opens WINDOW_HEAD s before its boundary and closes WINDOW_TAIL s
after its runs are finished (rows in, history written, processes gone); a
window may hold nothing but its own runs (checked against table t and both
run histories). pg_foreman's single job is enabled only in the gaps: enabled
1 s after a window closes and disabled GAP_LEAD s before the next opens.
"""
import time

from cluster import hms, log, next_minute, pct, process_deltas, process_name, wait_until
from pgproc import BenchError
import settings

CRON_K, FOREMAN_K, PAR_K = 1, 1001, 4001     # job numbers (column t.job) of the 100-job sets
CRON_ONE_K, FOREMAN_ONE_K = 2001, 3001       # the single jobs
SEQ_AT, PAR_AT = 30, 45                      # pg_foreman's seconds in each minute
WINDOW_HEAD, WINDOW_TAIL = 0.25, 0.2
GAP_LEAD = 3.0
DEADLINE = 25.0     # a window's runs must be finished this long after its boundary


def new_processes(before, after):
    """{process name: how many} of the processes that started in a window and
    are still there (e.g. a parallel tier's executors)."""
    out = {}
    for p, (cmd, _) in after.items():
        if p not in before:
            out[process_name(cmd)] = out.get(process_name(cmd), 0) + 1
    return out


class Minutes:
    def __init__(self, bench):
        self.b = bench
        self.c = bench.c
        self.r = bench.results
        self.last_end = 0.0
        self.one_job_spans = []

    # ---------------------------------------------------------------- setup
    @staticmethod
    def setup_sql():
        """pg_foreman's jobs of this phase, disabled (bench_* in tier fast,
        par_* in tier par, bench_one every second)."""
        return f"""
            SELECT foreman.create_tier('par', '10 seconds', concurrency => {settings.PAR_CONCURRENCY});
            SELECT foreman.schedule('bench_' || k, '{SEQ_AT} * * * * *',
                                    format('INSERT INTO t(job, at) VALUES (%s, clock_timestamp())', {FOREMAN_K} + k - 1),
                                    tier => 'fast', enabled => false, log_runs => 'all')
              FROM generate_series(1, {settings.JOBS}) k;
            SELECT foreman.schedule('par_' || k, '{PAR_AT} * * * * *',
                                    format('INSERT INTO t(job, at) VALUES (%s, clock_timestamp())', {PAR_K} + k - 1),
                                    tier => 'par', enabled => false, log_runs => 'all')
              FROM generate_series(1, {settings.JOBS}) k;
            SELECT foreman.schedule('one_job', '* * * * * *',
                                    'INSERT INTO t(job, at) VALUES ({FOREMAN_ONE_K}, clock_timestamp())',
                                    tier => 'fast', enabled => false, log_runs => 'all');"""

    @staticmethod
    def warm_up(c):
        """One run of each of this phase's jobs (run_now; they stay disabled),
        before anything is measured. A job's first run in a coordinator or
        executor pays once for what later runs find cached; the minutes
        measure the recurring runs. (pg_cron has nothing to warm: each of its
        runs is a new connection or worker.)"""
        jobs = "job_name LIKE 'bench\\_%' OR job_name LIKE 'par\\_%' OR job_name = 'one_job'"
        n = c.count(f"SELECT count(*) FROM (SELECT foreman.run_now(job_name) FROM foreman.job WHERE {jobs}) r")
        done = (f"SELECT count(DISTINCT job_name) FROM foreman.job_run WHERE ({jobs}) AND status = 'succeeded'")
        c.wait_for(f"the warm-up runs of {n} jobs", lambda: c.count(done) >= n, 60)

    def plan(self):
        n = self.b.s["boundaries"]
        return [("libpq", "burst")] * n + [("libpq", "one"), ("bgw", "one")] + [("bgw", "burst")] * n

    # ------------------------------------------------------------------ run
    def run(self):
        plan = self.plan()
        b0 = next_minute(time.time() + 15)
        log(f"minutes: {len(plan)} minutes from {hms(b0)}: pg_cron at :00, pg_foreman 100 jobs at "
            f":{SEQ_AT} (sequential) and :{PAR_AT} (parallel), its single job every second in between")
        wait_until(b0 - 12)   # past the previous :45, so pg_foreman's jobs first fire at b0+30 and b0+45
        self.set_cron_jobs(plan[0][1])
        self.foreman_enable(["bench\\_%", "par\\_%"], True)
        self.c.db.rows("ANALYZE foreman.job")
        try:
            for i, (mode, kind) in enumerate(plan):
                nxt = plan[i + 1] if i + 1 < len(plan) else None
                self.minute(b0 + 60 * i, mode, kind, nxt)
        finally:
            self.stop()
        self.collect_one_job()

    def minute(self, b, mode, kind, nxt):
        n, k = (settings.JOBS, CRON_K) if kind == "burst" else (1, CRON_ONE_K)
        w = self.window(f"pg_cron ({mode})", mode, "cron" if n > 1 else "cron1", b, k, n)
        if kind == "one":
            self.r["one_job"].setdefault(f"pg_cron ({mode})", []).append(w["delays_ms"][0])
        if nxt:
            self.next_cron(mode, kind, nxt)
        self.one_job_gap(b + SEQ_AT)
        self.window("pg_foreman", mode, "seq", b + SEQ_AT, FOREMAN_K, settings.JOBS)
        self.baseline(mode, b + PAR_AT - WINDOW_HEAD - GAP_LEAD)
        self.window("pg_foreman parallel", mode, "par", b + PAR_AT, PAR_K, settings.JOBS)
        if nxt:
            self.one_job_gap(b + 60)

    def next_cron(self, mode, kind, nxt):
        if nxt[1] != kind:
            self.set_cron_jobs(nxt[1])
        if nxt[0] != mode:
            log("restarting with cron.use_background_workers = on")
            self.b.restart("ALTER SYSTEM SET cron.use_background_workers = on")
            if self.c.db.value("SHOW cron.use_background_workers") != "on":
                raise BenchError("cron.use_background_workers is not on after the restart")
            for tier in ("fast", "par"):
                self.c.coordinator_pid(tier)

    def stop(self):
        """Nothing of this phase stays scheduled (also after a failure)."""
        self.set_one_job(False)
        self.foreman_enable(["bench\\_%", "par\\_%"], False)
        self.c.db.rows("SELECT cron.unschedule(jobid) FROM cron.job")

    # --------------------------------------------------------- job switches
    def set_cron_jobs(self, kind):
        """pg_cron's jobs for the next minute: 100 jobs or the single one."""
        db = self.c.db
        db.rows("SELECT cron.unschedule(jobid) FROM cron.job")
        first, n = (CRON_K, settings.JOBS) if kind == "burst" else (CRON_ONE_K, 1)
        db.rows(f"""SELECT cron.schedule('bench_' || k, '* * * * *',
                           format('INSERT INTO t(job, at) VALUES (%s, clock_timestamp())', {first} + k - 1))
                      FROM generate_series(1, {n}) k""")

    def foreman_enable(self, patterns, on):
        where = " OR ".join(f"job_name LIKE '{p}'" for p in patterns)
        self.c.db.rows(f"SELECT foreman.alter_job(job_name, enabled => {str(on).lower()}) FROM foreman.job WHERE {where}")

    def set_one_job(self, on):
        self.c.db.rows(f"SELECT foreman.alter_job('one_job', enabled => {str(on).lower()})")

    def one_job_gap(self, next_boundary):
        """pg_foreman's single job runs every second from 1 s after the last
        window until GAP_LEAD s before the next one opens."""
        start = self.last_end + 1.0
        end = next_boundary - WINDOW_HEAD - GAP_LEAD
        if end - start < 2:
            return
        wait_until(start)
        self.set_one_job(True)
        t0 = time.time()
        self.b.idle_wait(end)
        self.set_one_job(False)
        self.one_job_spans.append((t0, time.time()))

    # -------------------------------------------------------------- windows
    def window(self, system, mode, kind, boundary, first_k, n):
        """CPU of the whole cluster and start delays of the n runs due at
        `boundary`."""
        start = boundary - WINDOW_HEAD
        if self.last_end > start - 1:
            raise BenchError(f"{system} at {hms(boundary)}: the previous window ended at {hms(self.last_end)}")
        self.b.idle_wait(start)
        wait_until(start)
        before, c0, t0 = self.c.per_process(), self.c.cpu(), time.time()
        last_k = first_k + n - 1
        rows_q = (f"FROM t WHERE job BETWEEN {first_k} AND {last_k}"
                  f" AND at >= to_timestamp({boundary}) AND at < to_timestamp({boundary + 30})")
        self.finish_wait(system, boundary, rows_q, n, before)
        t_done = time.time()
        time.sleep(WINDOW_TAIL)
        c1, t1, after = self.c.cpu(), time.time(), self.c.per_process()
        self.last_end = t1
        delays = [(float(r[0]) - boundary) * 1000 for r in self.c.db.rows(f"SELECT extract(epoch FROM at) {rows_q}")]
        if len(delays) != n:
            raise BenchError(f"{system} at {hms(boundary)}: {len(delays)} rows for {n} jobs")
        self.check_alone(system, kind, t0, t1, first_k, last_k)
        w = {"system": system, "config": mode, "kind": kind, "boundary": boundary, "jobs": n, "runs": n,
             "cpu_ms": (c1 - c0) / 1e6, "seconds": t1 - t0, "done_after_s": t_done - boundary,
             "delays_ms": delays, "live_process_ms": process_deltas(before, after),
             "new_processes": new_processes(before, after)}
        self.r["windows"].append(w)
        log(f"{system}: {n} job(s) at {hms(boundary)}: done after {t_done - boundary:.3f} s, "
            f"{w['cpu_ms']:.1f} ms CPU in {w['seconds']:.2f} s ({w['cpu_ms'] / n:.3f} ms/run), "
            f"start delay p50 {pct(delays, .5):.1f} p95 {pct(delays, .95):.1f} max {max(delays):.1f} ms")
        return w

    def finish_wait(self, system, boundary, rows_q, n, before):
        """Until every run due at `boundary` has its row in t and is finished
        in its scheduler's history, and the processes that came for the runs
        (pg_cron's connections and workers) are gone. pg_foreman's executors
        stay for their idle timeout; their CPU so far is in the window."""
        if system.startswith("pg_cron"):
            hist = (f"SELECT count(*) FROM cron.job_run_details WHERE start_time >= to_timestamp({boundary - 1})"
                    " AND status IN ('succeeded', 'failed')")
        else:
            own = "par\\_%" if "parallel" in system else "bench\\_%"
            hist = (f"SELECT count(*) FROM foreman.job_run WHERE scheduled_for = to_timestamp({boundary})"
                    f" AND job_name LIKE '{own}' AND status <> 'running'")
        ex = self.c.exclude()

        def transient():
            return [c for p, c in self.c.children().items()
                    if p not in before and p not in ex and "pg_foreman executor" not in c]

        def finished():
            if self.c.count(f"SELECT count(*) {rows_q}") < n or self.c.count(hist) < n:
                return False
            return not system.startswith("pg_cron") or not transient()
        try:
            self.c.wait_for(f"{system}'s runs at {hms(boundary)}", finished,
                            boundary + DEADLINE - time.time(), every=0.02)
        except BenchError:
            raise BenchError(f"{system}: the {n} runs due at {hms(boundary)} did not all finish within "
                             f"{DEADLINE:.0f} s ({self.c.count(f'SELECT count(*) {rows_q}')} rows; "
                             f"processes left: {transient()})")

    def check_alone(self, system, kind, t0, t1, first_k, last_k):
        """Nothing but the window's own runs happened in it."""
        span = f"BETWEEN to_timestamp({t0}) AND to_timestamp({t1})"
        other = self.c.count(f"SELECT count(*) FROM t WHERE at {span} AND job NOT BETWEEN {first_k} AND {last_k}")
        own = {"seq": "bench\\_%", "par": "par\\_%"}.get(kind)
        fm = f"SELECT count(*) FROM foreman.job_run WHERE started_at {span}"
        other += self.c.count(fm + (f" AND job_name NOT LIKE '{own}'" if own else ""))
        if own:
            other += self.c.count(f"SELECT count(*) FROM cron.job_run_details WHERE start_time {span}")
        if other:
            raise BenchError(f"{system}: {other} other runs in its window ({hms(t0)}..{hms(t1)})")

    def baseline(self, mode, until):
        """The cluster's CPU with nothing due, from 1 s after the last window
        until `until`."""
        t0 = self.last_end + 1.0
        if until - t0 < 4:
            return
        wait_until(t0)
        c0, t0 = self.c.cpu(), time.time()
        self.b.idle_wait(until)
        c1, t1 = self.c.cpu(), time.time()
        span = f"BETWEEN to_timestamp({t0}) AND to_timestamp({t1})"
        n = self.c.count(f"""
            SELECT (SELECT count(*) FROM t WHERE at {span})
                 + (SELECT count(*) FROM foreman.job_run WHERE started_at {span})
                 + (SELECT count(*) FROM cron.job_run_details WHERE start_time {span})""")
        if n:
            raise BenchError(f"{n} runs happened in a baseline window ({hms(t0)}..{hms(t1)})")
        b = self.r["baseline"].setdefault(mode, {"seconds": 0.0, "cpu_ms": 0.0, "windows": 0})
        b["seconds"] += t1 - t0
        b["cpu_ms"] += (c1 - c0) / 1e6
        b["windows"] += 1

    # --------------------------------------------------------- single job
    def collect_one_job(self):
        """Start delays of pg_foreman's single job: its row's time minus the
        fire time its run was scheduled for (each run matched to its row)."""
        rows = self.c.db.rows(f"""
            SELECT r.status, extract(epoch FROM t.at - r.scheduled_for) * 1000
              FROM foreman.job_run r LEFT JOIN t ON t.job = {FOREMAN_ONE_K}
                                                AND t.at BETWEEN r.started_at AND r.finished_at
             WHERE r.job_name = 'one_job' ORDER BY r.run_id""")
        ok = [float(d) for st, d in rows if st == "succeeded" and d != ""]
        others = {}
        for st, d in rows:
            if st != "succeeded" or d == "":
                others[st] = others.get(st, 0) + 1
        self.r["one_job"]["pg_foreman"] = ok
        self.r["one_job_other_runs"] = others
        self.r["one_job_spans"] = self.one_job_spans
        log(f"pg_foreman's single job: {len(ok)} samples, p50 {pct(ok, .5):.2f} p99 {pct(ok, .99):.2f} "
            f"max {max(ok):.2f} ms" + (f"; other runs: {others}" if others else ""))
