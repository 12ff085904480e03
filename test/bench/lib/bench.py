#!/usr/bin/env python3
"""bench.py: the measurements of `make bench` (issue 15), pg_foreman beside
pg_cron, on the throwaway cluster run.sh made and started.

  setup      tables, both extensions, every job (disabled), tiers par and tput
  minutes    minutes.py: CPU per run and start delays at minute boundaries,
             pg_cron in libpq then background-worker mode (targets 1, 3, 4, 5)
  sustained  sustained.py: throughput, memory over a million runs, 50 idle
             databases (targets 2, 6, 7)

Every figure comes from this run: CPU from /proc (schedstat of live
processes, the postmaster's cutime/cstime for reaped ones), times from the
rows the jobs insert and from the run histories. A measurement that cannot be
taken is recorded under "errors" (and the phase's other figures are kept);
the run then exits 1. Results: --json (the report and the pictures read it).
"""
import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, log  # noqa: E402
from minutes import Minutes  # noqa: E402
from pgproc import BenchError  # noqa: E402
from sustained import Sustained  # noqa: E402
import settings  # noqa: E402


class Bench:
    def __init__(self, a):
        self.a = a
        self.s = settings.load()
        self.c = Cluster(a)
        self.results = {"windows": [], "baseline": {}, "one_job": {}, "errors": [],
                        "settings": {k: v for k, v in self.s.items() if k != "quick"},
                        "quick": {k: list(v) for k, v in self.s["quick"].items()},
                        "workload": {"jobs": settings.JOBS, "tput_jobs": settings.TPUT_JOBS,
                                     "par_concurrency": settings.PAR_CONCURRENCY,
                                     "idle_tiers": settings.IDLE_TIERS, "idle_jobs_per_db": settings.IDLE_JOBS_PER_DB,
                                     "mem_warmup_runs": settings.MEM_WARMUP_RUNS,
                                     "one_job_min_samples": settings.ONE_JOB_MIN_SAMPLES}}

    def restart(self, setting_sql):
        self.c.restart(setting_sql)

    def idle_wait(self, until):
        """Sleeps until `until` (the phases' waits go through here)."""
        while time.time() < until:
            time.sleep(min(0.25, max(0.0, until - time.time())))

    def setup(self):
        log("setup: table t, pg_cron and pg_foreman, every job (disabled)")
        db = self.c.db
        db.rows("""
            CREATE EXTENSION IF NOT EXISTS pg_cron;
            CREATE EXTENSION IF NOT EXISTS pg_foreman;
            CREATE TABLE t (job int NOT NULL, at timestamptz NOT NULL);
            CREATE INDEX ON t (at);
            CREATE INDEX ON t (job, at);
            -- pg_foreman's built-in history trim (pg_cron has none) fires once a
            -- minute at a time of its own; hourly from 30 minutes on, it cannot
            -- land in a window.
            SELECT foreman.alter_job('foreman.trim_run_history', schedule => '1 hour',
                                     start_at => now() + interval '30 minutes');""")
        db.rows(Minutes.setup_sql())
        db.rows(Sustained.setup_sql())
        if db.value("SHOW synchronous_commit") != "on":
            raise BenchError("synchronous_commit is not on: the start of a run would not be durable")
        for tier in ("fast", "slow", "par", "tput"):
            self.c.coordinator_pid(tier)
        Minutes.warm_up(self.c)
        db.rows("CHECKPOINT")

    def machine(self):
        info = {"nproc": os.cpu_count(), "kernel": platform.release()}
        with open("/proc/meminfo") as f:
            info["mem_gib"] = int(f.readline().split()[1]) / 1048576
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
        db = self.c.db
        info["postgres"] = db.value("SELECT version()").split(",")[0]
        info["pg_cron"] = db.value("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
        info["pg_foreman"] = db.value("SELECT extversion FROM pg_extension WHERE extname = 'pg_foreman'")
        info["source"] = os.environ.get("BENCH_SOURCE", "unknown")
        return info

    def phase(self, name, fn):
        """Runs one phase; a measurement it cannot take is recorded, loudly,
        and the next phase still runs."""
        try:
            fn()
        except BenchError as e:
            log(f"FAILED in the {name} phase: {e}")
            self.results["errors"].append(f"{name}: {e}")

    def run(self):
        r = self.results
        r["load_before"] = os.getloadavg()
        r["started"] = time.time()
        self.setup()
        r["machine"] = self.machine()
        self.phase("minutes", Minutes(self).run)
        self.phase("sustained", Sustained(self).run)
        r["load_after"] = os.getloadavg()
        r["finished"] = time.time()


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--data-dir", "--socket-dir", "--log-file", "--user", "--pg-bin", "--json"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    b = Bench(a)
    try:
        b.run()
    except BenchError as e:
        log(f"FAILED: {e}")
        b.results["errors"].append(f"setup: {e}")
    finally:
        b.results.setdefault("load_after", os.getloadavg())
        b.results.setdefault("finished", time.time())
        with open(a.json, "w") as f:
            json.dump(b.results, f, indent=1, default=str)
        b.c.close()
    for e in b.results["errors"]:
        print(f"bench.py: FAILED: {e}", file=sys.stderr, flush=True)
    return 1 if b.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
