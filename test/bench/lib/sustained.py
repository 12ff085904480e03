"""sustained.py: the long phase of the benchmark (targets 2, 6, 7).

One sequential tier `tput` runs 1,000 `SELECT 1` jobs every 100 ms with its
full history (log_runs = 'all') and durable starts (synchronous_commit on):

  throughput  runs/s over the first TPUT_SECONDS (default 60), per second and
              per 5-s slice, from the run history;
  memory      the same coordinator goes on until MEM_RUNS (default 1,000,000)
              runs after a warm-up of 1,000: its private memory (RssAnon of
              /proc/PID/status) at the warm-up and every tenth of the way;
  idle        IDLE_DBS (50) databases are made from a template with the
              extension (2 tiers, 100 hourly jobs, nothing due for 30
              minutes) while the memory runs go on; once they are done and
              the tier is stopped, the CPU of pg_foreman's launcher and the
              idle databases' coordinators is measured over IDLE_SECONDS (60)
              (schedstat of exactly those processes).

Autovacuum is on in this phase (a tier that updates its 1,000 job rows
millions of times needs it, as it would in production).
"""
import time

from cluster import log, process_deltas
from pgproc import BenchError, status_kib
import settings

MEM_FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")
STALL_SECONDS = 60      # no run for this long: the memory figure is missing
IDLE_SETTLE = 10        # seconds between the tier's stop (all idle coordinators up) and the measurement


class Sustained:
    def __init__(self, bench):
        self.b = bench
        self.c = bench.c
        self.s = bench.s
        self.r = bench.results
        self.idle_made = None
        self.warm = None
        self.mem_step = max(1, self.s["mem_runs"] // 10)
        self.last_n, self.last_t = 0, time.time()

    @staticmethod
    def setup_sql():
        return f"""
            SELECT foreman.create_tier('tput', '1 second');
            SELECT foreman.schedule('tput_' || k, '100 milliseconds', 'SELECT 1', tier => 'tput',
                                    enabled => false, log_runs => 'all')
              FROM generate_series(1, {settings.TPUT_JOBS}) k;"""

    def run(self):
        self.c.db.rows("ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf()")
        self.pid = self.c.coordinator_pid("tput")
        self.tier_id = self.c.db.value("SELECT tier_id FROM foreman.tier WHERE name = 'tput'")
        self.r["memory"] = {"pid": self.pid, "points": [{"runs": 0, "t": time.time(), **self.mem()}]}
        self.r0 = self.runs()
        log(f"throughput: enabling {settings.TPUT_JOBS:,} jobs of SELECT 1 every 100 ms in tier tput "
            f"(coordinator pid {self.pid})")
        self.c.db.rows(f"SELECT foreman.alter_job('tput_' || k, enabled => true)"
                       f"  FROM generate_series(1, {settings.TPUT_JOBS}) k")
        self.c.db.rows("ANALYZE foreman.job")
        try:
            self.throughput()
            self.memory()
        finally:
            self.c.db.rows("SELECT foreman.alter_tier('tput', enabled => false)")
        self.c.wait_for("the tput coordinator to stop", lambda: self.pid not in self.c.children(), 30)
        self.idle_measure()

    # ------------------------------------------------------------- helpers
    def mem(self):
        return {f: status_kib(self.pid, f) for f in MEM_FIELDS}

    def runs(self):
        v = self.c.db.value(f"SELECT runs FROM foreman.tier_status WHERE tier = 'tput' AND pid = {self.pid}")
        if v == "":
            raise BenchError(f"tier_status shows no run count for tier tput's coordinator {self.pid}")
        return int(v)

    def mem_point(self, n):
        p = {"runs": n, "t": time.time(), **self.mem()}
        self.r["memory"]["points"].append(p)
        return p

    # ---------------------------------------------------------- throughput
    def throughput(self):
        t0 = float(int(time.time()) + 2)      # a whole second, after the plans settled
        secs = self.s["tput_seconds"]
        time.sleep(t0 - time.time())
        before, c0 = self.c.per_process(), self.c.cpu()
        while time.time() < t0 + secs:
            time.sleep(min(0.5, max(0.0, t0 + secs - time.time())))
            self.mem_tick()
        c1, t1, after = self.c.cpu(), time.time(), self.c.per_process()
        per_s = self.per_second(t0, t1)
        row = self.c.db.rows(f"""
            SELECT count(*) FILTER (WHERE status = 'succeeded'),
                   count(*) FILTER (WHERE status NOT IN ('succeeded', 'skipped')),
                   count(*) FILTER (WHERE status = 'skipped'),
                   percentile_cont(array[0.5, 0.99]) WITHIN GROUP
                       (ORDER BY extract(epoch FROM started_at - scheduled_for) * 1000) FILTER (WHERE status = 'succeeded')
              FROM foreman.job_run
             WHERE tier_id = {self.tier_id} AND started_at >= to_timestamp({t0}) AND started_at < to_timestamp({t1})""")[0]
        done, bad, skipped = int(row[0]), int(row[1]), int(row[2])
        if done == 0:
            raise BenchError("no throughput run was recorded")
        if bad:
            raise BenchError(f"{bad} throughput runs did not succeed")
        slices = [sum(per_s[i:i + 5]) / len(per_s[i:i + 5]) for i in range(0, len(per_s), 5)]
        self.r["throughput"] = {
            "seconds": t1 - t0, "runs": done, "runs_per_s": done / (t1 - t0), "skipped_rows": skipped,
            "per_second": per_s, "rate_by_5s": slices,
            "cpu_ms": (c1 - c0) / 1e6, "cpu_per_run_us": (c1 - c0) / 1e3 / done,
            "delay_p50_p99_ms": [float(x) for x in row[3].strip("{}").split(",")], "live_process_ms": process_deltas(before, after)}
        log(f"throughput: {done:,} runs in {t1 - t0:.1f} s = {done / (t1 - t0):,.0f} runs/s, "
            f"{(c1 - c0) / 1e3 / done:.0f} us CPU per run; per 5 s: {', '.join(f'{x:,.0f}' for x in slices)}")

    def per_second(self, t0, t1):
        """Succeeded runs started in each whole second of [t0, t1)."""
        n = int(round(t1 - t0))
        rows = self.c.db.rows(f"""
            SELECT floor(extract(epoch FROM started_at) - {t0})::int, count(*)
              FROM foreman.job_run
             WHERE tier_id = {self.tier_id} AND status = 'succeeded'
               AND started_at >= to_timestamp({t0}) AND started_at < to_timestamp({t0 + n})
             GROUP BY 1 ORDER BY 1""")
        out = [0] * n
        for s, k in rows:
            out[int(s)] = int(k)
        return out

    # -------------------------------------------------------------- memory
    def mem_tick(self):
        """Records the memory points due by now: the warm-up (the first poll
        past MEM_WARMUP_RUNS runs), then each tenth of MEM_RUNS after it.
        True when the last one is taken."""
        n = self.runs() - self.r0
        if self.warm is None:
            if n >= settings.MEM_WARMUP_RUNS:
                self.warm = self.mem_point(n)
                self.mem_next = n + self.mem_step
                log(f"memory: warm-up point at {n:,} runs, RssAnon {self.warm['RssAnon']:,} kB; "
                    f"{self.s['mem_runs']:,} runs from here")
            return False
        target = self.warm["runs"] + self.s["mem_runs"]
        if n >= self.mem_next or n >= target:
            p = self.mem_point(n)
            log(f"memory: {n:,} runs ({(n - self.warm['runs']) / (p['t'] - self.warm['t']):,.0f} runs/s): "
                f"RssAnon {p['RssAnon']:,} kB ({(p['RssAnon'] - self.warm['RssAnon']) / 1024:+.2f} MiB)")
            self.mem_next = self.warm["runs"] + self.mem_step * ((n - self.warm["runs"]) // self.mem_step + 1)
        self.progress(n)
        return n >= target

    def progress(self, n):
        """BenchError when the tier has not run for STALL_SECONDS."""
        now = time.time()
        if n > self.last_n:
            self.last_n, self.last_t = n, now
        elif now - self.last_t > STALL_SECONDS:
            raise BenchError(f"no run of tier tput for {STALL_SECONDS} s at {n:,} runs: no memory figure")

    def memory(self):
        self.idle_start()
        while not self.mem_tick():
            time.sleep(0.5)
        if self.c.coordinator_pid("tput") != self.pid:
            raise BenchError("the tput coordinator was replaced during the memory measurement")
        self.r["memory"]["seconds"] = self.r["memory"]["points"][-1]["t"] - self.warm["t"]

    # ---------------------------------------------------------------- idle
    def idle_start(self):
        """The idle databases, made while the tier runs on (their making is
        not measured)."""
        n = self.s["idle_dbs"]
        log(f"idle: making {n} databases with the extension, {settings.IDLE_JOBS_PER_DB} hourly jobs each")
        db = self.c.db
        db.rows("DROP DATABASE IF EXISTS idle_template; CREATE DATABASE idle_template IS_TEMPLATE true")
        tpl = self.c.session("idle_template")
        # The first fire of everything in 30 minutes; the built-in trim job too.
        tpl.rows(f"""
            CREATE EXTENSION pg_foreman;
            SELECT foreman.alter_job('foreman.trim_run_history', schedule => '1 hour',
                                     start_at => now() + interval '30 minutes');
            SELECT foreman.schedule('hourly_' || k, '1 hour', 'SELECT 1', start_at => now() + interval '30 minutes')
              FROM generate_series(1, {settings.IDLE_JOBS_PER_DB}) k;""")
        self.c.close_session(tpl)
        for i in range(1, n + 1):
            db.rows(f"CREATE DATABASE idle_{i:02d} TEMPLATE idle_template")
            self.mem_tick()
        self.idle_made = time.time()

    def idle_pids(self):
        """pg_foreman's processes for the idle databases: the launcher, their
        coordinators and any scout."""
        out = self.c.foreman_pids("launcher")
        for p, c in self.c.foreman_pids("").items():
            if " idle_" in c:
                out[p] = c
        return out

    def idle_ready(self):
        """The idle databases' processes once every coordinator runs and no
        scout is left; None before."""
        pids = self.idle_pids()
        coords = [c for c in pids.values() if "coordinator idle_" in c]
        if len(coords) < self.s["idle_dbs"] * settings.IDLE_TIERS or any("scout" in c for c in pids.values()):
            return None
        return pids

    def idle_measure(self):
        """pg_foreman's CPU for the idle databases over IDLE_SECONDS, on a
        quiet cluster: after the memory runs, the tput tier stopped."""
        self.c.wait_for("the idle databases' coordinators", self.idle_ready, 180, every=0.5)
        time.sleep(IDLE_SETTLE)
        pids = self.c.wait_for("the idle databases' coordinators", self.idle_ready, 10)
        log(f"idle: measuring {len(pids)} pg_foreman processes for {self.s['idle_seconds']:.0f} s "
            f"(databases made {time.time() - self.idle_made:.0f} s ago)")
        cpu0, t0 = self.c.per_process(), time.time()
        time.sleep(self.s["idle_seconds"])
        cpu1, t1, pids1 = self.c.per_process(), time.time(), self.idle_pids()
        gone = [p for p in pids if p not in cpu1]
        new = [p for p in pids1 if p not in pids]
        if gone or new:
            raise BenchError(f"pg_foreman's processes changed during the idle measurement (gone {gone}, new {new})")
        self.idle_check(t0, t1)
        per = {}
        for p, cmd in pids.items():
            kind = "launcher" if "launcher" in cmd else "coordinators"
            per[kind] = per.get(kind, 0) + (cpu1[p][1] - cpu0[p][1]) / 1e6
        total = sum(per.values())
        self.r["idle"] = {"dbs": self.s["idle_dbs"], "tiers": settings.IDLE_TIERS, "processes": len(pids),
                          "seconds": t1 - t0, "cpu_ms": total, "core_pct": total / 1000 / (t1 - t0) * 100,
                          "per_kind_ms": per, "jobs_per_db": settings.IDLE_JOBS_PER_DB}
        log(f"idle: {total:.1f} ms CPU in {t1 - t0:.1f} s = {total / 10 / (t1 - t0):.4f}% of a core "
            f"({', '.join(f'{k} {v:.1f} ms' for k, v in per.items())})")

    def idle_check(self, t0, t1):
        """Nothing ran and nothing was due in any idle database."""
        for k in range(1, self.s["idle_dbs"] + 1):
            s = self.c.session(f"idle_{k:02d}")
            try:
                n = int(s.value(f"""
                    SELECT (SELECT count(*) FROM foreman.job_run WHERE started_at <= to_timestamp({t1}))
                         + (SELECT count(*) FROM foreman.job WHERE enabled AND next_run_at <= to_timestamp({t1}))"""))
            finally:
                self.c.close_session(s)
            if n:
                raise BenchError(f"idle_{k:02d}: {n} runs or due jobs during the idle measurement")
