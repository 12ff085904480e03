#!/usr/bin/env python3
"""bench.py: the measurements behind test/bench/run.sh (pg_foreman vs pg_cron).

run.sh has made and started one throwaway cluster with pg_cron and pg_foreman
preloaded; this script does everything on it and prints the table. Every
figure comes from this run: CPU from /proc (schedstat of live processes, the
postmaster's cutime/cstime for reaped ones), times from the rows the jobs
insert and from the run history. Anything that cannot be measured raises
BenchError: the run fails (exit 1).

Timeline (one scheduler active at a time, checked):
  T        pg_foreman alone: 1,000 SELECT 1 jobs every 100 ms in tier tput,
           30 s of throughput, then until 100,000 more runs for the RSS.
  M1..M3   pg_cron (libpq mode): 100 jobs '* * * * *' fire at :00;
           pg_foreman: the same 100 jobs fire at :30 of the same minutes
           ('30 * * * * *': six-field cron, a per-minute schedule shifted by
           30 s so both share the minutes without overlapping) and 1 job at :15.
           The idle database's 60 s run alongside (other processes).
  M4       pg_cron (libpq) 1 job at :00; pg_foreman 1 job at :15; restart with
           cron.use_background_workers = on.
  M5..M8   pg_cron (background workers): 1 job, then 100 jobs three times.
  Between windows: the cluster's CPU with nothing due (the baseline).
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgproc  # noqa: E402
from pgproc import BenchError, Psql  # noqa: E402

N_JOBS = 100            # jobs of the per-run CPU workload
CRON_K = 1              # job numbers (column t.job): pg_cron 1..100
FOREMAN_K = 1001        # pg_foreman 1001..1100
CRON_ONE_K = 2001       # pg_cron's single job
FOREMAN_ONE_K = 3001    # pg_foreman's single job
# The figures; the environment may shrink them to try the driver.
BOUNDARIES = int(os.environ.get("BENCH_BOUNDARIES", 3))      # minute boundaries per system, 100 jobs
TPUT_JOBS = 1000
TPUT_SECONDS = float(os.environ.get("BENCH_TPUT_SECONDS", 30))
MEM_RUNS = int(os.environ.get("BENCH_MEM_RUNS", 100_000))
MEM_WARMUP_RUNS = 1_000
IDLE_JOBS = 10_000
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", 60))
BURST_DEADLINE = 45.0   # a boundary's runs must all have happened by then


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


def next_minute(t):
    return (math.floor(t / 60) + 1) * 60


def pct(xs, p):
    """percentile_cont: linear interpolation between the closest ranks."""
    if not xs:
        raise BenchError("percentile of no values")
    s = sorted(xs)
    k = (len(s) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def process_name(cmd):
    """A process title without its changing state: 'pg_foreman coordinator postgres/fast'."""
    name = cmd.replace("postgres: ", "", 1)
    if name.startswith("pg_foreman coordinator"):
        return " ".join(name.split()[:3])
    if name.startswith("postgres ") or "[local]" in name:
        return "client backends"
    if name.startswith("pg_cron worker") or name.startswith("pg_cron:"):
        return "pg_cron workers"
    return name.strip()


def process_deltas(before, after):
    """CPU (ms) per process name between two per_process() samples; live
    processes only (reaped ones are in the cluster total, not here)."""
    out = {}
    for p, (cmd, ns) in after.items():
        d = ns - before[p][1] if p in before else ns
        if d > 0:
            n = process_name(cmd)
            out[n] = out.get(n, 0) + d / 1e6
    return out


def slice_rates(samples, width):
    """Runs/s in consecutive slices of `width` seconds from (time, counter) samples."""
    out, start = [], samples[0]
    for s in samples[1:]:
        if s[0] - start[0] >= width:
            out.append(round((s[1] - start[1]) / (s[0] - start[0])))
            start = s
    return out


def hms(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


class Bench:
    def __init__(self, a):
        self.a = a
        self.sock = a.socket_dir
        self.port = a.port
        self.results = {"windows": [], "baseline": {}, "one_job": {},
                        "settings": {"boundaries": BOUNDARIES, "tput_seconds": TPUT_SECONDS, "mem_runs": MEM_RUNS,
                                     "mem_warmup_runs": MEM_WARMUP_RUNS, "idle_seconds": IDLE_SECONDS,
                                     "tput_jobs": TPUT_JOBS, "idle_jobs": IDLE_JOBS, "jobs": N_JOBS}}
        self.idle = None          # the idle database's measurement in progress
        self.last_window_end = 0.0
        self.connect()

    # ------------------------------------------------------------------ cluster
    def pm_pid(self):
        with open(os.path.join(self.a.data_dir, "postmaster.pid")) as f:
            return int(f.readline())

    def connect(self):
        self.pm = self.pm_pid()
        self.db = Psql(self.sock, self.port, "postgres")
        self.idle_db = Psql(self.sock, self.port, "idle") if self.has_idle_db() else None
        self.exclude = {self.db.backend_pid} | ({self.idle_db.backend_pid} if self.idle_db else set())

    def has_idle_db(self):
        probe = Psql(self.sock, self.port, "postgres")
        try:
            return probe.value("SELECT count(*) FROM pg_database WHERE datname = 'idle'") == "1"
        finally:
            probe.close()

    def close(self):
        for s in (self.db, self.idle_db):
            if s:
                s.close()

    def cpu(self):
        return pgproc.cluster_cpu_ns(self.pm, self.exclude)

    def per_process(self):
        ch = pgproc.children(self.pm)
        cpu = pgproc.processes_cpu_ns([p for p in ch if p not in self.exclude])
        return {p: (ch[p], ns) for p, ns in cpu.items()}

    def restart(self, setting_sql):
        self.db.rows(setting_sql)
        self.close()
        old = self.pm
        cmd = ["pg_ctl", "-D", self.a.data_dir, "-l", self.a.log_file, "-m", "fast", "-w", "-t", "60", "restart"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.a.user, "--", "env", "HOME=/tmp", f"PATH={self.a.pg_bin}:{os.environ['PATH']}"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"restart failed: {r.stdout}{r.stderr}")
        self.connect()
        if self.pm == old:
            raise BenchError("the postmaster did not restart")

    def wait_for(self, what, fn, timeout, every=0.2):
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.time() > deadline:
                raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.tick()
            time.sleep(every)

    def coordinator_pid(self, tier, db="postgres"):
        def find():
            for p, cmd in pgproc.children(self.pm).items():
                if cmd.startswith(f"postgres: pg_foreman coordinator {db}/{tier}"):
                    return p
            return None
        return self.wait_for(f"the coordinator of {db}/{tier}", find, 30)

    # -------------------------------------------------------------------- setup
    def setup(self):
        log("setup: tables, extensions, jobs (all paused), the idle database with 10,000 hourly jobs")
        self.db.rows("""
            CREATE EXTENSION IF NOT EXISTS pg_cron;
            CREATE EXTENSION IF NOT EXISTS pg_foreman;
            CREATE TABLE t (job int NOT NULL, at timestamptz NOT NULL);
            CREATE INDEX ON t (at);
            -- pg_foreman's built-in history trim (pg_cron has none) would fire every
            -- minute at a time of its own; hourly, it cannot land in a window.
            SELECT foreman.alter_job('foreman.trim_run_history', schedule => '1 hour');
            SELECT foreman.create_tier('tput', '1 second');
        """)
        self.db.rows(f"""
            SELECT foreman.schedule('bench_' || k, '30 * * * * *',
                                    format('INSERT INTO t(job, at) VALUES (%s, clock_timestamp())', {FOREMAN_K} + k - 1),
                                    tier => 'fast', enabled => false)
              FROM generate_series(1, {N_JOBS}) k;
            SELECT foreman.schedule('bench_one', '15 * * * * *',
                                    'INSERT INTO t(job, at) VALUES ({FOREMAN_ONE_K}, clock_timestamp())',
                                    tier => 'fast', enabled => false);
            SELECT foreman.schedule('tput_' || k, '100 milliseconds', 'SELECT 1', tier => 'tput', enabled => false)
              FROM generate_series(1, {TPUT_JOBS}) k;
        """)
        self.db.rows("CREATE DATABASE idle")
        self.idle_db = Psql(self.sock, self.port, "idle")
        self.exclude.add(self.idle_db.backend_pid)
        t0 = time.time()
        self.idle_db.rows(f"""
            CREATE EXTENSION pg_foreman;
            SELECT foreman.alter_job('foreman.trim_run_history', schedule => '1 hour');
            SELECT foreman.schedule('hourly_' || k, '1 hour', 'SELECT 1',
                                    start_at => now() + interval '30 minutes')
              FROM generate_series(1, {IDLE_JOBS}) k;
        """)
        # Statistics of the jobs as they are measured, as autovacuum gathers
        # them within a minute or so (see analyze_jobs).
        self.idle_db.rows("ANALYZE foreman.job")
        n = int(self.idle_db.value("SELECT count(*) FROM foreman.job WHERE job_name LIKE 'hourly\\_%' AND enabled"))
        if n != IDLE_JOBS:
            raise BenchError(f"the idle database has {n} jobs, not {IDLE_JOBS}")
        log(f"  10,000 hourly jobs scheduled in {time.time() - t0:.1f} s")
        self.coordinator_pid("slow", "idle")
        self.coordinator_pid("tput")

    # --------------------------------------------------------- idle (in passing)
    def idle_pids(self):
        out = {}
        for p, cmd in pgproc.children(self.pm).items():
            if cmd.startswith("postgres: pg_foreman launcher") or \
               cmd.startswith("postgres: pg_foreman coordinator idle/") or \
               cmd.startswith("postgres: pg_foreman scout idle"):
                out[p] = cmd
        return out

    def idle_start(self):
        pids = self.idle_pids()
        if not any("coordinator idle/" in c for c in pids.values()):
            raise BenchError("no pg_foreman coordinator serves the idle database")
        self.idle = {"pids": pids, "t0": time.time(), "cpu0": pgproc.processes_cpu_ns(pids)}
        log(f"idle: measuring {len(pids)} pg_foreman processes for {IDLE_SECONDS:.0f} s (in passing)")

    def tick(self):
        """Called while waiting: ends the idle measurement when its time is up."""
        if self.idle and "t1" not in self.idle and time.time() >= self.idle["t0"] + IDLE_SECONDS:
            cpu1 = pgproc.processes_cpu_ns(self.idle["pids"])
            t1 = time.time()
            now_pids = self.idle_pids()
            gone = [p for p in self.idle["pids"] if p not in cpu1]
            new = [p for p in now_pids if p not in self.idle["pids"]]
            if gone or new:
                raise BenchError(f"pg_foreman processes changed during the idle measurement (gone {gone}, new {new})")
            self.idle.update(t1=t1, cpu1=cpu1)

    def idle_finish(self):
        self.wait_for("the end of the idle measurement", lambda: "t1" in self.idle, IDLE_SECONDS + 30)
        i = self.idle
        t0, t1 = i["t0"], i["t1"]
        runs = int(self.idle_db.value(
            f"SELECT count(*) FROM foreman.job_run WHERE started_at BETWEEN to_timestamp({t0}) AND to_timestamp({t1})"))
        due = self.idle_db.value(
            f"SELECT count(*) FROM foreman.job WHERE enabled AND next_run_at <= to_timestamp({t1})")
        if runs != 0 or due != "0":
            raise BenchError(f"the idle database ran {runs} jobs / had {due} due during its idle minute")
        per = {}
        for p in i["pids"]:
            n = process_name(i["pids"][p])
            per[n] = per.get(n, 0) + (i["cpu1"][p] - i["cpu0"][p]) / 1e6
        total_ms = sum(per.values())
        secs = t1 - t0
        self.results["idle"] = {"seconds": secs, "cpu_ms": total_ms, "core_pct": total_ms / 1000 / secs * 100,
                                "per_process_ms": per, "jobs": IDLE_JOBS}
        log(f"idle: {total_ms:.1f} ms CPU in {secs:.1f} s = {total_ms / 10 / secs:.4f}% of a core")

    # --------------------------------------------------- throughput and memory
    def throughput_and_memory(self):
        pid = self.coordinator_pid("tput")
        def mem():
            return {f: pgproc.status_kib(pid, f) for f in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}
        mem0 = mem()
        runs_q = "SELECT runs FROM foreman.tier_status WHERE tier = 'tput' AND leader AND pid = %d" % pid

        def runs():
            v = self.db.value(runs_q)
            if v == "":
                raise BenchError("tier_status shows no runs count for tier tput")
            return int(v)
        r_start = runs()
        log(f"throughput: enabling {TPUT_JOBS} jobs of SELECT 1 every 100 ms in tier tput (coordinator pid {pid})")
        self.db.rows(f"SELECT foreman.alter_job('tput_' || k, enabled => true) FROM generate_series(1, {TPUT_JOBS}) k")
        self.analyze_jobs()
        before = self.per_process()
        c0, t0 = self.cpu(), time.time()
        warm = None
        samples = [(t0, runs())]   # the run counter over time: is the rate steady?
        while time.time() < t0 + TPUT_SECONDS:
            time.sleep(min(0.5, max(0.0, t0 + TPUT_SECONDS - time.time())))
            r = runs()
            samples.append((time.time(), r))
            if warm is None and r - r_start >= MEM_WARMUP_RUNS:
                warm = (r, mem())
        c1, t1 = self.cpu(), time.time()
        after = self.per_process()
        row = self.db.rows(f"""
            SELECT count(*) FILTER (WHERE status = 'succeeded'),
                   count(*) FILTER (WHERE status NOT IN ('succeeded', 'skipped')),
                   count(*) FILTER (WHERE status = 'skipped'),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for) * 1000)
                       FILTER (WHERE status = 'succeeded'),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for) * 1000)
                       FILTER (WHERE status = 'succeeded')
              FROM foreman.job_run
             WHERE job_name LIKE 'tput\\_%' AND started_at >= to_timestamp({t0}) AND started_at < to_timestamp({t1})""")[0]
        done, bad, skipped = int(row[0]), int(row[1]), int(row[2])
        if done == 0 or row[3] == "":
            raise BenchError("no throughput run was recorded")
        if bad:
            raise BenchError(f"{bad} throughput runs did not succeed")
        secs = t1 - t0
        self.results["throughput"] = {
            "seconds": secs, "runs": done, "runs_per_s": done / secs, "skipped_rows": skipped,
            "cpu_ms": (c1 - c0) / 1e6, "cpu_per_run_us": (c1 - c0) / 1e3 / done,
            "p99_delay_ms": float(row[3]), "p50_delay_ms": float(row[4]),
            "live_process_ms": process_deltas(before, after),
            "rate_by_5s": slice_rates(samples, 5.0)}
        log(f"throughput: {done} runs in {secs:.1f} s = {done / secs:.0f} runs/s, "
            f"{(c1 - c0) / 1e3 / done:.0f} us CPU per run, p99 start delay {float(row[3]):.1f} ms")

        # Memory: on to 100,000 runs after the warm-up.
        if warm is None:
            r = self.wait_for("the warm-up runs", lambda: (lambda r: r - r_start >= MEM_WARMUP_RUNS and r)(runs()), 60)
            warm = (r, mem())
        target = warm[0] + MEM_RUNS
        log(f"memory: waiting for {MEM_RUNS:,} runs after the warm-up (at {warm[0] - r_start} runs)")
        deadline = time.time() + 240
        while True:
            r = runs()
            if r >= target:
                break
            if time.time() > deadline:
                raise BenchError(f"only {r - warm[0]} of {MEM_RUNS} runs in 240 s: no memory figure")
            time.sleep(0.5)
        after = (r, mem())
        t_after = time.time()
        # The same tier went on running: its rate from the end of the 30 s to here.
        self.results["throughput"]["after_window"] = {
            "runs": r - samples[-1][1], "seconds": t_after - samples[-1][0],
            "runs_per_s": (r - samples[-1][1]) / (t_after - samples[-1][0])}
        if pgproc.children(self.pm).get(pid, "").find("coordinator postgres/tput") < 0:
            raise BenchError("the tput coordinator was replaced during the memory measurement")
        self.db.rows("SELECT foreman.alter_tier('tput', enabled => false)")
        self.results["memory"] = {"points": [
            {"runs": 0, **mem0}, {"runs": warm[0] - r_start, **warm[1]}, {"runs": after[0] - r_start, **after[1]}]}
        log("memory: " + "; ".join(f"{p['runs']} runs: VmRSS {p['VmRSS']} kB (anon {p['RssAnon']}, shmem {p['RssShmem']})"
                                   for p in self.results["memory"]["points"]))
        self.wait_for("the tput coordinator to stop", lambda: pid not in pgproc.children(self.pm), 30)

    # --------------------------------------------------------------- bursts
    def baseline(self, config, until):
        """The cluster's CPU with nothing due, from now until `until`."""
        t0 = time.time() + 0.5
        if until - t0 < 8:
            return
        wait_until(t0)
        c0 = self.cpu()
        while time.time() < until:
            self.tick()
            time.sleep(min(0.5, max(0.0, until - time.time())))
        c1, t1 = self.cpu(), time.time()
        # Nothing may have run: no row in t, no pg_foreman run, no pg_cron run.
        n = int(self.db.value(f"""
            SELECT (SELECT count(*) FROM t WHERE at BETWEEN to_timestamp({t0}) AND to_timestamp({t1}))
                 + (SELECT count(*) FROM foreman.job_run WHERE started_at BETWEEN to_timestamp({t0}) AND to_timestamp({t1}))
                 + (SELECT count(*) FROM cron.job_run_details WHERE start_time BETWEEN to_timestamp({t0}) AND to_timestamp({t1}))"""))
        if n:
            raise BenchError(f"{n} runs happened in a baseline window ({hms(t0)}..{hms(t1)})")
        b = self.results["baseline"].setdefault(config, {"seconds": 0.0, "cpu_ms": 0.0, "windows": 0})
        b["seconds"] += t1 - t0
        b["cpu_ms"] += (c1 - c0) / 1e6
        b["windows"] += 1

    def burst(self, system, config, boundary, first_k, n_jobs):
        """CPU and start delays of the runs due at `boundary`: the window opens
        1 s before it and closes when every run has inserted its row, the
        processes that came for them are gone, and 0.5 s more have passed."""
        start = boundary - 1.0
        if self.last_window_end > start:
            raise BenchError(f"{system} at {hms(boundary)}: the previous window ended at {hms(self.last_window_end)}")
        while time.time() < start - 0.3:
            self.tick()
            time.sleep(min(0.25, max(0.0, start - 0.3 - time.time())))
        wait_until(start)
        before = self.per_process()
        c0, t0 = self.cpu(), time.time()
        last_k = first_k + n_jobs - 1
        count_q = (f"SELECT count(*) FROM t WHERE job BETWEEN {first_k} AND {last_k}"
                   f" AND at >= to_timestamp({boundary}) AND at < to_timestamp({boundary + 59})")
        deadline = boundary + BURST_DEADLINE
        while True:
            time.sleep(0.1)
            self.tick()
            n = int(self.db.value(count_q))
            if n >= n_jobs:
                break
            if time.time() > deadline:
                raise BenchError(f"{system}: only {n} of {n_jobs} runs due at {hms(boundary)} "
                                 f"happened within {BURST_DEADLINE:.0f} s")
        t_done = time.time()
        # The processes that came for these runs (pg_cron's connections or
        # background workers) must be gone, their CPU reaped into the
        # postmaster's cutime; autovacuum workers come and go on their own.
        def transient():
            return [c for p, c in pgproc.children(self.pm).items()
                    if p not in before and p not in self.exclude and "autovacuum worker" not in c]
        try:
            self.wait_for("the job processes to end", lambda: not transient(), 15, every=0.05)
        except BenchError:
            raise BenchError(f"{system}: processes still there 15 s after the runs: {transient()}")
        time.sleep(0.5)
        c1, t1 = self.cpu(), time.time()
        after = self.per_process()
        self.last_window_end = t1
        rows = self.db.rows(f"SELECT extract(epoch FROM at) FROM t WHERE job BETWEEN {first_k} AND {last_k}"
                            f" AND at >= to_timestamp({boundary}) AND at < to_timestamp({boundary + 59})")
        if len(rows) != n_jobs:
            raise BenchError(f"{system} at {hms(boundary)}: {len(rows)} rows for {n_jobs} jobs")
        delays = [(float(r[0]) - boundary) * 1000 for r in rows]
        # Only one scheduler at a time: nothing else ran in the window.
        other = int(self.db.value(f"""
            SELECT count(*) FROM t WHERE at BETWEEN to_timestamp({t0}) AND to_timestamp({t1})
               AND job NOT BETWEEN {first_k} AND {last_k}"""))
        if system.startswith("pg_cron"):
            other += int(self.db.value(
                f"SELECT count(*) FROM foreman.job_run WHERE started_at BETWEEN to_timestamp({t0}) AND to_timestamp({t1})"))
        else:
            other += int(self.db.value(
                f"SELECT count(*) FROM cron.job_run_details WHERE start_time BETWEEN to_timestamp({t0}) AND to_timestamp({t1})"))
            other += int(self.db.value(
                f"SELECT count(*) FROM foreman.job_run WHERE started_at BETWEEN to_timestamp({t0}) AND to_timestamp({t1})"
                f" AND job_name NOT LIKE 'bench\\_%'"))
        if other:
            raise BenchError(f"{system} at {hms(boundary)}: {other} other runs in its window")
        procs = process_deltas(before, after)
        w = {"system": system, "config": config, "boundary": boundary, "jobs": n_jobs, "runs": len(rows),
             "cpu_ms": (c1 - c0) / 1e6, "seconds": t1 - t0, "done_after_s": t_done - boundary,
             "delays_ms": delays, "live_process_ms": procs}
        self.results["windows"].append(w)
        log(f"{system}: {n_jobs} jobs at {hms(boundary)}: done after {t_done - boundary:.2f} s, "
            f"{w['cpu_ms']:.1f} ms CPU in {w['seconds']:.1f} s ({w['cpu_ms'] / n_jobs:.3f} ms/run), "
            f"start delay p50 {pct(delays, .5):.1f} p95 {pct(delays, .95):.1f} max {max(delays):.1f} ms")
        return w

    def one_job_sample(self, system, boundary, k):
        """Start delay of a single job (no CPU window)."""
        q = (f"SELECT extract(epoch FROM at) FROM t WHERE job = {k}"
             f" AND at >= to_timestamp({boundary}) AND at < to_timestamp({boundary + 59})")
        def seen():
            r = self.db.rows(q)
            return r if r else None
        if self.last_window_end > boundary:
            raise BenchError(f"{system}'s single job at {hms(boundary)} falls in the window before "
                             f"(ended {hms(self.last_window_end)})")
        while time.time() < boundary:
            self.tick()
            time.sleep(min(0.25, max(0.0, boundary - time.time())))
        r = self.wait_for(f"{system}'s single job due at {hms(boundary)}", seen, BURST_DEADLINE, every=0.1)
        if len(r) != 1:
            raise BenchError(f"{system}'s single job ran {len(r)} times at {hms(boundary)}")
        d = (float(r[0][0]) - boundary) * 1000
        self.results["one_job"].setdefault(system, []).append(d)
        log(f"{system}: 1 job at {hms(boundary)}: start delay {d:.1f} ms")

    def cron_schedule(self, first_k, n, name):
        self.db.rows(f"""SELECT cron.schedule('{name}_' || k, '* * * * *',
                                format('INSERT INTO t(job, at) VALUES (%s, clock_timestamp())', {first_k} + k - 1))
                           FROM generate_series(1, {n}) k""")

    def cron_unschedule_all(self):
        self.db.rows("SELECT cron.unschedule(jobid) FROM cron.job")
        if self.db.value("SELECT count(*) FROM cron.job") != "0":
            raise BenchError("pg_cron jobs left after unscheduling")

    def analyze_jobs(self):
        """Statistics of foreman.job as they are now. The coordinator's plans
        follow them: with statistics taken while a tier's jobs were disabled,
        its bookkeeping UPDATEs scan the partial index job_due_idx instead of
        the primary key (several times slower; see RESULTS.md). Autovacuum
        would catch up within a minute or so; the measurements are of the
        steady state."""
        self.db.rows("ANALYZE foreman.job")

    def foreman_enable(self, pattern, enabled):
        self.db.rows(f"SELECT foreman.alter_job(job_name, enabled => {str(enabled).lower()})"
                     f"  FROM foreman.job WHERE job_name LIKE '{pattern}'")

    def minutes(self):
        # M1..M3: pg_cron (libpq) at :00, pg_foreman 1 job at :15 and 100 jobs at :30.
        b = next_minute(time.time() + 8)
        wait_until(b - 55)   # past the previous boundary
        self.cron_schedule(CRON_K, N_JOBS, "bench")
        log(f"pg_cron (libpq): {N_JOBS} jobs scheduled '* * * * *'; first boundary {hms(b)}")
        self.baseline("libpq", b - 26)
        # Past the previous minute's :15 and :30, so they first fire at b+15 and b+30.
        wait_until(b - 25)
        self.foreman_enable("bench\\_%", True)
        self.analyze_jobs()
        for i in range(BOUNDARIES):
            bi = b + 60 * i
            self.burst("pg_cron (libpq)", "libpq", bi, CRON_K, N_JOBS)
            if i == 0:
                self.idle_start()
            if i == BOUNDARIES - 1:
                self.cron_unschedule_all()
                self.cron_schedule(CRON_ONE_K, 1, "bench_one")
            self.one_job_sample("pg_foreman", bi + 15, FOREMAN_ONE_K)
            self.burst("pg_foreman", "libpq", bi + 30, FOREMAN_K, N_JOBS)
            if i == BOUNDARIES - 1:
                self.foreman_enable("bench\\_%", False)
                self.foreman_enable("bench\\_one", True)
            self.baseline("libpq", bi + 60 - 3)
        # M4: the single jobs, then pg_cron's other mode.
        b4 = b + 60 * BOUNDARIES
        self.burst("pg_cron (libpq) 1 job", "libpq", b4, CRON_ONE_K, 1)
        self.results["one_job"].setdefault("pg_cron (libpq)", []).append(self.results["windows"][-1]["delays_ms"][0])
        self.cron_unschedule_all()
        self.one_job_sample("pg_foreman", b4 + 15, FOREMAN_ONE_K)
        self.foreman_enable("bench\\_one", False)
        self.idle_finish()
        log("restarting with cron.use_background_workers = on")
        self.restart("ALTER SYSTEM SET cron.use_background_workers = on")
        if self.db.value("SHOW cron.use_background_workers") != "on":
            raise BenchError("cron.use_background_workers is not on after the restart")
        # M5..M8: pg_cron (background workers).
        b5 = next_minute(time.time() + 5)
        wait_until(b5 - 55)
        self.cron_schedule(CRON_ONE_K, 1, "bench_one")
        self.baseline("bgw", b5 - 3)
        self.burst("pg_cron (bgw) 1 job", "bgw", b5, CRON_ONE_K, 1)
        self.results["one_job"].setdefault("pg_cron (bgw)", []).append(self.results["windows"][-1]["delays_ms"][0])
        self.cron_unschedule_all()
        self.cron_schedule(CRON_K, N_JOBS, "bench")
        self.baseline("bgw", b5 + 60 - 3)
        for i in range(BOUNDARIES):
            bi = b5 + 60 * (i + 1)
            self.burst("pg_cron (bgw)", "bgw", bi, CRON_K, N_JOBS)
            if i == BOUNDARIES - 1:
                self.cron_unschedule_all()
            else:
                self.baseline("bgw", bi + 60 - 3)

    # --------------------------------------------------------------- report
    def machine(self):
        info = {"nproc": os.cpu_count(), "kernel": platform.release()}
        with open("/proc/meminfo") as f:
            info["mem_gib"] = int(f.readline().split()[1]) / 1048576
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        info["postgres"] = self.db.value("SELECT version()").split(",")[0]
        info["pg_cron"] = self.db.value("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
        info["pg_foreman"] = self.db.value("SELECT extversion FROM pg_extension WHERE extname = 'pg_foreman'")
        info["source"] = os.environ.get("BENCH_SOURCE", "unknown")
        return info

    def run(self):
        self.results["load_before"] = os.getloadavg()
        self.results["started"] = time.time()
        self.setup()
        self.results["machine"] = self.machine()
        self.throughput_and_memory()
        self.minutes()
        self.results["load_after"] = os.getloadavg()
        self.results["finished"] = time.time()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--socket-dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log-file", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--pg-bin", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    b = Bench(a)
    try:
        b.run()
    except BenchError as e:
        print(f"bench.py: FAILED: {e}", file=sys.stderr, flush=True)
        with open(a.json + ".partial", "w") as f:
            json.dump(b.results, f, indent=1, default=str)
        b.close()
        return 1
    with open(a.json, "w") as f:
        json.dump(b.results, f, indent=1, default=str)
    b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
