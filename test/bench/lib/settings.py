#!/usr/bin/env python3
"""settings.py: what `make bench` measures, and how much of it.

The workloads are those of issue 15 (100 jobs at one instant, 1,000 jobs
every 100 ms, 50 databases, ...). The BENCH_* knobs below shrink a run to try
the driver; any knob set below its full value makes the run a *quick try*:
the report marks every figure it touched and says the run does not answer
the issue.

`python3 settings.py conf DIR PORT` prints the postgresql.conf lines of the
benchmark's cluster (run.sh appends them), so the number of worker slots
follows the number of databases from one place.
"""
import os
import sys

# The workloads (not knobs: changing them changes the question).
JOBS = 100               # jobs due at one instant (CPU per run, start delays)
TPUT_JOBS = 1000         # SELECT 1 jobs every 100 ms in one sequential tier
PAR_CONCURRENCY = 8      # the parallel tier of target 5
IDLE_TIERS = 2           # tiers per idle database (the default fast and slow)
IDLE_JOBS_PER_DB = 100   # hourly jobs in each idle database, none due in the window
MEM_WARMUP_RUNS = 1000   # memory growth is counted from here (caches, plans)

# Knobs: (environment variable, full value, what it is). A smaller value is a
# quick try; a larger one is fine.
KNOBS = {
    "boundaries": ("BENCH_BOUNDARIES", 2, "minute boundaries with 100 pg_cron jobs, per pg_cron mode"),
    "tput_seconds": ("BENCH_TPUT_SECONDS", 60, "seconds of the throughput window"),
    "mem_runs": ("BENCH_MEM_RUNS", 1_000_000, "runs of the memory measurement"),
    "idle_dbs": ("BENCH_IDLE_DBS", 50, "idle databases"),
    "idle_seconds": ("BENCH_IDLE_SECONDS", 60, "seconds of the idle measurement"),
}
# A p99 of fewer samples is the maximum or next to it: the figure is refused
# (missing) below this many single-job samples in a full run. 100 samples put
# the p99 between the largest and the second largest value; the minute phase
# gathers about 30 per minute (a run every second between the other windows).
ONE_JOB_MIN_SAMPLES = 100


def load():
    """{name: value} of the knobs, plus 'quick': {name: (value, full)} of
    those set below their full value."""
    s, quick = {}, {}
    for name, (var, full, _) in KNOBS.items():
        raw = os.environ.get(var, "")
        try:
            v = type(full)(float(raw)) if raw else full
        except ValueError:
            sys.exit(f"settings.py: {var}={raw!r} is not a number")
        if v <= 0:
            sys.exit(f"settings.py: {var} must be positive")
        s[name] = v
        if v < full:
            quick[name] = (v, full)
    s["quick"] = quick
    return s


def worker_slots(s):
    """max_worker_processes: the idle databases' coordinators, the bench
    database's four tiers, the parallel tier's executors, pg_cron's
    background workers (cron.max_running_jobs = 32) and its launcher,
    PostgreSQL's parallel workers (8), the launcher and two scouts, and room."""
    return s["idle_dbs"] * IDLE_TIERS + 4 + PAR_CONCURRENCY + 33 + 8 + 3 + 16


def conf(directory, port):
    s = load()
    return f"""shared_preload_libraries = 'pg_cron,pg_foreman'
port = {port}
listen_addresses = ''
unix_socket_directories = '{directory}'
# pg_cron: its jobs live in the postgres database; in libpq mode it connects
# through the socket directory. The driver restarts with background workers on.
cron.database_name = 'postgres'
cron.host = '{directory}'
cron.use_background_workers = off
# Every database with the extension gets its coordinators (the default, said).
foreman.databases = '*'
max_worker_processes = {worker_slots(s)}
# No timed checkpoint inside the measurement windows of the minute phase; the
# throughput phase still checkpoints when max_wal_size fills.
checkpoint_timeout = 30min
# The driver turns autovacuum on for the throughput phase (see bench.py).
autovacuum = off
"""


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "conf":
        print(conf(sys.argv[2], int(sys.argv[3])), end="")
        return 0
    if len(sys.argv) == 2 and sys.argv[1] == "describe":
        s = load()
        for name, (var, full, what) in KNOBS.items():
            print(f"  {var}={s[name]} ({what}; full: {full})")
        return 0
    print("usage: settings.py conf DIR PORT | describe", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
