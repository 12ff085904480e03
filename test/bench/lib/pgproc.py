"""pgproc: a persistent psql session and CPU/memory accounting of a cluster's
processes from /proc. Standard library only."""
import os
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement could not be taken: the run fails."""


class Psql:
    """One long-lived psql session. Its backend pid is known, so its own CPU
    can be left out of the cluster's; queries cost no fork/connect."""

    _marker = "__pgbench_end_of_result__"

    def __init__(self, host, port, dbname, user="postgres", runas=None):
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
               "-h", host, "-p", str(port), "-U", user, "-d", dbname]
        if runas:
            cmd = ["runuser", "-u", runas, "--", "env", "HOME=/tmp"] + cmd
        self.desc = f"psql {dbname}"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.backend_pid = int(self.value("SELECT pg_backend_pid()"))

    def rows(self, sql):
        """Runs sql (one or more statements); returns the rows of the output
        as lists of strings. Any error ends the benchmark."""
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + self._marker + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                err = self.proc.stderr.read()
                raise BenchError(f"{self.desc} ended while running:\n{sql}\n{err.strip()}")
            line = line.rstrip("\n")
            if line == self._marker:
                break
            if line != "":
                out.append(line.split("\x1f"))
        return out

    def value(self, sql):
        r = self.rows(sql)
        if len(r) != 1 or len(r[0]) != 1:
            raise BenchError(f"expected one value from:\n{sql}\ngot {r!r}")
        return r[0][0]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()


def _read(path):
    with open(path) as f:
        return f.read()


def stat_fields(pid):
    """Fields of /proc/pid/stat after the command name (index 0 = state)."""
    s = _read(f"/proc/{pid}/stat")
    return s[s.rindex(")") + 2:].split()


def children(ppid):
    """{pid: cmdline} of ppid's children."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = stat_fields(d)
            if int(f[1]) == ppid:
                out[int(d)] = _read(f"/proc/{d}/cmdline").replace("\0", " ").strip()
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass
    return out


def task_cpu_ns(pid):
    """CPU time of a (single-threaded) process in ns, from schedstat."""
    return int(_read(f"/proc/{pid}/schedstat").split()[0])


def cluster_cpu_ns(pm_pid, exclude=()):
    """CPU of every process of the cluster so far: the postmaster, its live
    children (ns, from schedstat) and its reaped children (cutime+cstime,
    clock ticks). Monotonic, so the difference of two samples is the CPU used
    in between, whichever processes came and went. Excluded pids (the
    benchmark's own sessions) are left out while they live."""
    f = stat_fields(pm_pid)
    reaped_ticks = int(f[13]) + int(f[14])  # cutime, cstime
    total = task_cpu_ns(pm_pid) + reaped_ticks * (10**9 // CLK_TCK)
    for pid in children(pm_pid):
        if pid in exclude:
            continue
        try:
            total += task_cpu_ns(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended between the listing and the read: in cutime now or soon
    return total


def processes_cpu_ns(pids):
    """{pid: ns} for the given pids (those that still exist)."""
    out = {}
    for pid in pids:
        try:
            out[pid] = task_cpu_ns(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def status_kib(pid, field):
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field}")


def now():
    return time.time()
