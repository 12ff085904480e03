"""cluster.py: the benchmark's view of its throwaway cluster: sessions, CPU
of its processes, waiting, restarting. Standard library only."""
import math
import os
import subprocess
import time

import pgproc
from pgproc import BenchError, Psql


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


def next_minute(t):
    return (math.floor(t / 60) + 1) * 60


def hms(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


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
    if name.startswith("pg_foreman coordinator") or name.startswith("pg_foreman executor"):
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


class Cluster:
    """Sessions to the cluster (their backends are left out of its CPU) and
    the /proc view of its processes."""

    def __init__(self, a):
        self.a = a
        self.sessions = []
        self.connect()

    def pm_pid(self):
        with open(os.path.join(self.a.data_dir, "postmaster.pid")) as f:
            return int(f.readline())

    def connect(self):
        self.pm = self.pm_pid()
        self.sessions = []
        self.db = self.session("postgres")

    def session(self, dbname):
        """A session whose backend's CPU is not counted."""
        s = Psql(self.a.socket_dir, self.a.port, dbname)
        self.sessions.append(s)
        return s

    def close_session(self, s):
        s.close()
        self.sessions.remove(s)

    def exclude(self):
        return {s.backend_pid for s in self.sessions}

    def close(self):
        for s in list(self.sessions):
            s.close()
        self.sessions = []

    def cpu(self):
        """CPU (ns) of every process of the cluster so far, sessions excepted."""
        return pgproc.cluster_cpu_ns(self.pm, self.exclude())

    def children(self):
        return pgproc.children(self.pm)

    def per_process(self):
        ex = self.exclude()
        ch = self.children()
        cpu = pgproc.processes_cpu_ns([p for p in ch if p not in ex])
        return {p: (ch[p], ns) for p, ns in cpu.items()}

    def restart(self, setting_sql):
        self.db.rows(setting_sql)
        self.close()
        old = self.pm
        cmd = ["pg_ctl", "-D", self.a.data_dir, "-l", self.a.log_file, "-m", "fast", "-w", "-t", "60", "restart"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.a.user, "--", "env", "HOME=/tmp",
                   f"PATH={self.a.pg_bin}:{os.environ['PATH']}"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"restart failed: {r.stdout}{r.stderr}")
        self.connect()
        if self.pm == old:
            raise BenchError("the postmaster did not restart")

    def wait_for(self, what, fn, timeout, every=0.2, tick=None):
        """fn()'s first true value, polled; BenchError after timeout s."""
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.time() > deadline:
                raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
            if tick:
                tick()
            time.sleep(every)

    def foreman_pids(self, prefix):
        """{pid: title} of this cluster's processes whose title starts with
        'postgres: pg_foreman ' + prefix."""
        want = "postgres: pg_foreman " + prefix
        return {p: c for p, c in self.children().items() if c.startswith(want)}

    def coordinator_pid(self, tier, db="postgres", timeout=30):
        def find():
            pids = self.foreman_pids(f"coordinator {db}/{tier}")
            return next((p for p, c in pids.items() if c.split()[3] == f"{db}/{tier}"), None)
        return self.wait_for(f"the coordinator of {db}/{tier}", find, timeout)

    def count(self, sql):
        return int(self.db.value(sql))
