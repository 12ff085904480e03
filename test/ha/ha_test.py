#!/usr/bin/python3
"""ha_test.py: pg_foreman on a real Patroni cluster with a real etcd (issue 18).

Started by scripts/test-ha.sh inside the "hub" network namespace it built (a
bridge, etcd's address, and one veth per node namespace). The driver is root
only to move links and enter namespaces; etcd, Patroni, PostgreSQL, patronictl
and pg_ctl run as TEST_USER. It talks to PostgreSQL over unix sockets (they
cross network namespaces) and to Patroni's REST API over the bridge.

Scenarios, in order (each prints its figures; the must-be-0 ones are asserted):
  1. kill -9 of the primary's postmaster (asynchronous replication)
  2. patronictl switchover (planned)
  3. synchronous_mode: true, then kill -9 of the primary's postmaster again
  4. the old primary of 3 rejoins as a replica (Patroni runs pg_rewind when its
     WAL went past the new timeline's fork): nothing runs there
  5. network partition of the primary (its link goes down: it loses etcd and
     the other nodes), under synchronous (5s) and then asynchronous (5a)
     replication

What is measured (every time in seconds from the event, on the one clock of
this machine):
  * Executions come from a trace: every job's command first appends one line
    (job, its fire time, run_id, the server's port, clock_timestamp()) to a
    file outside every database, and a second one when it ends. That is the
    ground truth of which fire time started where and when, whatever any
    node's database kept.
  * Run rows are read from each node's foreman.job_run: the new primary's, and
    the old primary's as it was when it stopped (after a kill -9: a copy of its
    data directory made while its postmaster is dead, opened read-only by a
    throwaway standby; after a partition: the demoted node itself, read-only,
    before it rejoins).
  * fire time run twice: two run rows (old and new primary together, the same
    row counted once) of one job and fire time, neither 'skipped'; and, from the
    trace, a fire time whose command started twice.
  * lost fire times: grid points (anchor + phase + n * period) of every job from
    the start of the scenario to the newest fire time the new primary recorded,
    with no run row at all. Each grid point is classified: run (a row on the new
    primary), run but its record lost (a row only on the old primary: the loss
    window of asynchronous replication), skipped (a 'skipped' row, e.g. the
    coalesced fire times of the downtime), or unaccounted (must be 0).
  * lost start records: run rows of the old primary (not 'skipped') missing on
    the new one; and executions (trace) of the old primary without a row on the
    new one.
  * runs left running: rows still 'running' on the new primary that started
    before their tier's current leader took the lead (tier_lease.since), once
    every tier leads there. Must be 0.
  * ran on two nodes at once: pairs of executions of one job, one per node,
    whose time spans intersect. An execution's span ends at its end line, or
    its node's row's finished_at; failing both, when the test saw the last
    pg_foreman process of that node gone (a bound the real end can only be
    earlier than). Must be 0.
  * in doubt: start records only the old primary has whose command never
    started (its commit waited for a standby it could not reach).
"""

import decimal
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.request
from decimal import Decimal

import psycopg2
import yaml

# ---------------------------------------------------------------------------
# Settings (scripts/test-ha.sh exports them).

ROOT = os.environ.get("HA_ROOT", "/tmp/ha-pg_foreman")
NETNS = os.environ.get("HA_NETNS", "pgfha")
SUBNET = os.environ.get("HA_SUBNET", "10.199.47")
ETCD_PORT = int(os.environ.get("HA_ETCD_PORT", "54701"))
ETCD_PEER_PORT = int(os.environ.get("HA_ETCD_PEER_PORT", "54702"))
REST_PORT = int(os.environ.get("HA_REST_PORT", "54711"))
PG_PORT = int(os.environ.get("HA_PG_PORT", "54721"))
INSPECT_PORT = int(os.environ.get("HA_INSPECT_PORT", "54790"))
PG_BIN = os.environ["PG_BIN"]
TEST_USER = os.environ.get("TEST_USER", "pgforeman")
HUB_IP = f"{SUBNET}.1"
SCOPE = "pgf-ha"
TRACE = os.path.join(ROOT, "trace.tsv")

# Patroni's timing: a leader that cannot reach etcd demotes itself within
# loop_wait + 2 * retry_timeout (9 s), before its leader key expires (ttl 10 s).
DCS = {"ttl": 10, "loop_wait": 1, "retry_timeout": 4}

USER = pwd.getpwnam(TEST_USER)
decimal.getcontext().prec = 28

# The workload: (name, schedule, tier, timeout, body after the trace line).
JOBS = [
    ("beat", "1 second", "fast", None, ""),
    ("par_a", "1 second", "par", None, "; SELECT pg_sleep(0.2)"),
    ("par_b", "1 second", "par", None, "; SELECT pg_sleep(0.2)"),
    ("long", "10 seconds", "slow", "6 seconds", "; SELECT pg_sleep(3)"),
]
# long succeeds in 3 s of every 10 (so an event often cuts one short) and has
# a timeout. A crash (a failover) after a crash backs a job off; the fire
# times it passes over are one 'skipped' row (reason 'crash back-off').
JOB_NAMES = [j[0] for j in JOBS]


# The jobs of tier par, whose coordinator the cancel probe interrupts.
CANCEL_PROBE_JOBS = ("par_a", "par_b")


class Failure(Exception):
    """The run cannot go on (a bounded wait ran out, a command failed)."""


# ---------------------------------------------------------------------------
# Output and assertions.

T_START = time.time()
FAILED = []  # (scenario, what) of every failed assertion


def log(msg):
    print(f"[{time.time() - T_START:7.2f}] {msg}", flush=True)


def check(scenario, what, ok, detail=""):
    """An assertion: printed; a failed one fails the run."""
    print(f"    {'ok  ' if ok else 'FAIL'} {what}{(': ' + detail) if detail else ''}", flush=True)
    if not ok:
        FAILED.append((scenario, what + (f" ({detail})" if detail else "")))
    return ok


def wait_for(what, fn, timeout, interval=0.1):
    """Polls fn until it returns something true; bounded. Returns (value, seconds)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        value = fn()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Processes: every one started here is recorded and stopped by pid.

PROCS = []  # (name, Popen) of etcd and the Patroni daemons


def user_cmd(argv, ns=None):
    """argv run as TEST_USER (in network namespace ns), with a clean environment."""
    env = ["env", "-i", "HOME=/tmp", f"PATH={PG_BIN}:/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"]
    priv = ["setpriv", f"--reuid={USER.pw_uid}", f"--regid={USER.pw_gid}", "--init-groups", "--"]
    netns = ["ip", "netns", "exec", ns] if ns else []
    return netns + priv + env + argv


def start_daemon(name, argv, ns, cwd, logfile):
    # ip netns exec, setpriv and env each exec the next: the pid is the daemon's.
    out = open(logfile, "ab")
    proc = subprocess.Popen(user_cmd(argv, ns), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    out.close()
    PROCS.append((name, proc))
    return proc


def run_user(argv, timeout=60, check_rc=True):
    res = subprocess.run(user_cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                         text=True, cwd=ROOT)
    if check_rc and res.returncode != 0:
        raise Failure(f"{' '.join(argv)} failed ({res.returncode}): {res.stdout.strip()}")
    return res.stdout


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pids_in_dir(path):
    """Processes whose working directory is path: a PostgreSQL server's postmaster
    and every child of it (and the programs its backends start) work in its data
    directory."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/cwd") == path:
                    found.append(int(d))
            except OSError:
                pass
    return [p for p in found if alive(p)]


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


FOREMAN_TITLE = re.compile(r"^postgres: (?:[^:]*: )?pg_foreman ")


def foreman_pids(path):
    """pg_foreman's launcher, scouts, coordinators and executors of the server in path."""
    return [p for p in pids_in_dir(path) if FOREMAN_TITLE.match(cmdline(p))]


def kill_and_wait(pids, sig, timeout):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


# ---------------------------------------------------------------------------
# Nodes.

class Node:
    def __init__(self, i):
        self.i = i
        self.name = f"n{i}"
        self.ns = f"{NETNS}-n{i}"
        self.veth = f"veth-n{i}"
        self.ip = f"{SUBNET}.1{i}"
        self.rest = REST_PORT + i - 1
        self.port = PG_PORT + i - 1
        self.dir = os.path.join(ROOT, self.name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.config = os.path.join(self.dir, "patroni.yml")
        self.patroni_log = os.path.join(self.dir, "patroni.log")
        self.pg_log_dir = os.path.join(self.dir, "pglog")
        self.proc = None

    def __repr__(self):
        return self.name

    # SQL over the unix socket; a new connection each time (nodes restart).
    def query(self, sql, args=None, timeout=10):
        conn = psycopg2.connect(host=self.sock, port=self.port, user="postgres", dbname="postgres",
                                connect_timeout=3, application_name="ha_test",
                                options=f"-c statement_timeout={timeout * 1000}")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def try_query(self, sql, args=None):
        try:
            return self.query(sql, args)
        except psycopg2.Error:
            return None

    def value(self, sql, args=None):
        rows = self.try_query(sql, args)
        return rows[0][0] if rows else None

    def rest_get(self, path, timeout=1.5):
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{self.rest}{path}", timeout=timeout) as r:
                return json.loads(r.read())
        except Exception:
            return None

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def patroni_log_text(self):
        with open(self.patroni_log, errors="replace") as f:
            return f.read()


NODES = [Node(i) for i in (1, 2, 3)]
BY_NAME = {n.name: n for n in NODES}
PORT_NODE = {str(n.port): n for n in NODES}
PASSWORDS = {k: secrets.token_hex(12) for k in ("superuser", "replication", "rewind")}


def patroni_config(node):
    """The Patroni configuration of one node. The pg_foreman part is in
    bootstrap.dcs (the cluster-wide configuration every node takes from etcd):
    shared_preload_libraries and max_worker_processes must be the same on every
    node, and Patroni checks the latter on replicas against the primary."""
    return {
        "scope": SCOPE,
        "namespace": "/service/",
        "name": node.name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "restapi": {"listen": f"{node.ip}:{node.rest}", "connect_address": f"{node.ip}:{node.rest}"},
        "etcd3": {"hosts": [f"{HUB_IP}:{ETCD_PORT}"]},
        "bootstrap": {
            "dcs": {
                **DCS,
                "maximum_lag_on_failover": 1048576,
                # A crashed primary fails over at once instead of being restarted
                # in place (default 300 s): scenario 1 is a failover.
                "primary_start_timeout": 0,
                # synchronous_mode only: a demotion whose fast shutdown has not
                # finished in 5 s becomes an immediate one (a backend waiting
                # for the unreachable standby may hold it up; pg_foreman's
                # coordinators end such a wait on SIGTERM).
                "primary_stop_timeout": 5,
                "synchronous_mode": False,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": {
                        "shared_preload_libraries": "pg_foreman",
                        "max_worker_processes": 32,
                        "max_connections": 50,
                        "wal_keep_size": "256MB",
                        # A demoted primary's fast shutdown waits for its walsenders
                        # to hand the last WAL to the standbys: when they are cut
                        # off, for wal_sender_timeout (default 60 s).
                        "wal_sender_timeout": "10s",
                        "foreman.log_runs": "all",
                    },
                },
            },
            # Checksums: pg_rewind needs them (or wal_log_hints).
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "pg_hba": [
                "local all all trust",
                f"host replication replicator {SUBNET}.0/24 scram-sha-256",
                f"host all all {SUBNET}.0/24 scram-sha-256",
            ],
        },
        "postgresql": {
            "listen": f"{node.ip}:{node.port}",
            "connect_address": f"{node.ip}:{node.port}",
            "data_dir": node.data,
            "bin_dir": PG_BIN,
            "pgpass": os.path.join(node.dir, "pgpass"),
            "use_unix_socket": True,
            "authentication": {
                "superuser": {"username": "postgres", "password": PASSWORDS["superuser"]},
                "replication": {"username": "replicator", "password": PASSWORDS["replication"]},
                "rewind": {"username": "rewinder", "password": PASSWORDS["rewind"]},
            },
            "parameters": {
                "unix_socket_directories": node.sock,
                "logging_collector": "on",
                "log_directory": node.pg_log_dir,
                "log_filename": "postgresql.log",
                "log_line_prefix": "%m [%p] %b ",
            },
        },
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def chown_tree(path):
    for root, dirs, files in os.walk(path):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.lchown(n, USER.pw_uid, USER.pw_gid)


def start_etcd():
    d = os.path.join(ROOT, "etcd")
    os.makedirs(d)
    chown_tree(d)
    url = f"http://{HUB_IP}:{ETCD_PORT}"
    peer = f"http://{HUB_IP}:{ETCD_PEER_PORT}"
    start_daemon("etcd", ["etcd", "--name", "hub", "--data-dir", os.path.join(d, "data"),
                          "--listen-client-urls", url, "--advertise-client-urls", url,
                          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                          "--initial-cluster", f"hub={peer}", "--initial-cluster-state", "new",
                          "--initial-cluster-token", SCOPE],
                 None, d, os.path.join(ROOT, "etcd.log"))

    def healthy():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                return json.loads(r.read()).get("health") == "true"
        except Exception:
            return False
    _, took = wait_for("etcd to answer /health", healthy, 30)
    log(f"etcd up at {url} ({took:.1f} s)")


def start_patroni(node):
    node.proc = start_daemon(f"patroni {node.name}", ["patroni", node.config], node.ns, node.dir, node.patroni_log)


def cluster_view(nodes=None):
    """Patroni's /cluster from the first node that answers."""
    for n in nodes or NODES:
        c = n.rest_get("/cluster")
        if c and "members" in c:
            return c
    return None


def leader_name(nodes=None):
    c = cluster_view(nodes)
    if not c:
        return None
    return next((m["name"] for m in c["members"] if m["role"] == "leader" and m.get("state") == "running"), None)


def is_primary(node):
    return node.value("SELECT NOT pg_is_in_recovery()") is True


def is_streaming(node):
    return node.value("SELECT status = 'streaming' FROM pg_stat_wal_receiver") is True


def wait_replica_of(old, new, timeout):
    """Until old replays WAL of new's timeline written after this call: a
    replica of new for good. (A diverged old primary can show 'streaming' for
    a moment before its startup process refuses the new timeline.) The jobs
    write WAL every second."""
    tli_hex, lsn = new.query("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), pg_current_wal_lsn()")[0]
    wait_for(f"{old.name} to replay {new.name}'s timeline past {lsn}",
             lambda: old.value("SELECT status = 'streaming' AND received_tli = %s AND pg_last_wal_replay_lsn() >= %s"
                               " FROM pg_stat_wal_receiver", (int(tli_hex, 16), lsn)) is True, timeout, 0.1)


def primary():
    name = leader_name()
    if not name or not is_primary(BY_NAME[name]):
        raise Failure(f"no primary (Patroni's leader: {name})")
    return BY_NAME[name]


def boot_cluster():
    for n in NODES:
        for d in (n.dir, n.sock, n.pg_log_dir):
            os.makedirs(d, mode=0o700)
        with open(n.config, "w") as f:
            yaml.safe_dump(patroni_config(n), f, sort_keys=False)
        chown_tree(n.dir)
    for n in NODES:
        start_patroni(n)

    def ready():
        c = cluster_view()
        if not c or len(c["members"]) != 3:
            return False
        lead = leader_name()
        if not lead or not is_primary(BY_NAME[lead]):
            return False
        return all(is_streaming(n) for n in NODES if n.name != lead)
    _, took = wait_for("a Patroni leader and two streaming replicas", ready, 180, 0.5)
    log(f"cluster up: leader {leader_name()}, two streaming replicas ({took:.1f} s)")


def patronictl(*args, timeout=60):
    return run_user(["patronictl", "-c", NODES[0].config, *args], timeout=timeout)


def stop_everything():
    """By pid, in order: Patroni stops its PostgreSQL (fast shutdown); whatever is
    left of a server (a killed Patroni, a frozen one) is stopped through its
    postmaster; then the throwaway inspection server; then etcd."""
    for n in NODES:  # a partitioned node gets its link back, so that Patroni can let go cleanly
        subprocess.run(["ip", "link", "set", n.veth, "up"], stderr=subprocess.DEVNULL)
    patronis = [(name, p) for name, p in PROCS if name.startswith("patroni") and p.poll() is None]
    for _, p in patronis:
        try:
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    left = kill_and_wait([p.pid for _, p in patronis], 0, 45)
    if left:
        log(f"Patroni did not stop in 45 s, killing: {left}")
        kill_and_wait(left, signal.SIGKILL, 10)
    for _, p in patronis:
        p.poll()
    for d in [n.data for n in NODES] + [os.path.join(ROOT, "inspect", "data")]:
        for sig, wait in ((signal.SIGQUIT, 15), (signal.SIGKILL, 10)):
            pids = pids_in_dir(d)
            if not pids:
                break
            log(f"stopping what is left in {d} ({signal.Signals(sig).name}): {pids}")
            kill_and_wait(pids, sig, wait)
    for name, p in PROCS:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# ---------------------------------------------------------------------------
# Workload and what it leaves.

def trace_command(job, body):
    """The job's command: a trace line when it starts, its body, a trace line when
    it ends (none when the body is cancelled, times out or the server dies)."""
    def line(what):
        return (f"COPY (SELECT '{what}', job_name, extract(epoch FROM scheduled_for)::numeric(20,6), run_id, "
                f"current_setting('port'), extract(epoch FROM clock_timestamp())::numeric(20,6) "
                f"FROM foreman.job_run WHERE job_name = '{job}' AND status = 'running' "
                f"ORDER BY started_at DESC LIMIT 1) TO PROGRAM 'cat >> {TRACE}'")
    return f"{line('start')}{body}; {line('end')}"


def create_workload(p):
    with open(TRACE, "w"):
        pass
    os.chown(TRACE, USER.pw_uid, USER.pw_gid)
    p.query("CREATE EXTENSION pg_foreman")
    p.query("SELECT foreman.create_tier('par', '1 second', concurrency => 2)")
    for name, sched, tier, timeout, body in JOBS:
        p.query("SELECT foreman.schedule(%s, %s, %s, tier => %s, timeout => %s)",
                (name, sched, trace_command(name, body), tier, timeout))
    wait_for("every tier to lead on the primary", lambda: tiers_lead(p), 30)
    wait_for("every job to run on the primary", lambda: all(executions(job=j, node=p) for j in JOB_NAMES), 30)


def tiers_lead(node):
    return node.value("SELECT (SELECT count(DISTINCT tier) FROM foreman.tier_status WHERE leader)"
                      " = (SELECT count(*) FROM foreman.tier WHERE enabled)") is True


def read_trace():
    """Executions: one per start line, with the time of its end line if any."""
    starts, ends = [], {}
    with open(TRACE) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 6:
                continue
            e = {"job": parts[1], "sched": Decimal(parts[2]), "run_id": int(parts[3]),
                 "node": PORT_NODE[parts[4]].name, "t": Decimal(parts[5]), "end": None}
            if parts[0] == "start":
                starts.append(e)
            else:
                ends[(e["node"], e["job"], e["sched"], e["run_id"])] = e["t"]
    for e in starts:
        e["end"] = ends.get((e["node"], e["job"], e["sched"], e["run_id"]))
    return starts


def executions(job=None, node=None, after=None):
    return [e for e in read_trace() if (job is None or e["job"] == job) and (node is None or e["node"] == node.name)
            and (after is None or e["t"] > Decimal(repr(after)))]


RUN_ROWS_SQL = """
SELECT job_name, extract(epoch FROM scheduled_for)::numeric(20,6)::text, extract(epoch FROM started_at)::numeric(20,6)::text,
       extract(epoch FROM finished_at)::numeric(20,6)::text, status, coalesce(reason, ''), coalesce(message, ''),
       attempt, run_id
  FROM foreman.job_run WHERE job_name = ANY(%s) ORDER BY run_id"""


def run_rows(node):
    rows = node.query(RUN_ROWS_SQL, (JOB_NAMES,))
    return [{"job": r[0], "sched": Decimal(r[1]) if r[1] else None, "started": Decimal(r[2]),
             "finished": Decimal(r[3]) if r[3] else None, "status": r[4], "reason": r[5], "message": r[6],
             "attempt": r[7], "run_id": r[8]} for r in rows]


def row_key(r):
    # One record on both nodes: its run_id is replicated with it. (Not its
    # started_at: a run recorded in a batch gets its real start when it
    # finishes, which one node may have and the other not. A fire time run
    # again on the new primary gets a new run_id from a sequence that is
    # past every replicated one, and the trace counts executions apart.)
    return (r["job"], r["sched"], r["attempt"], r["run_id"])


def job_grids(node):
    rows = node.query("SELECT job_name, extract(epoch FROM anchor_at + phase)::numeric(20,6)::text,"
                      " extract(epoch FROM period)::numeric(20,6)::text FROM foreman.job WHERE job_name = ANY(%s)",
                      (JOB_NAMES,))
    return {r[0]: (Decimal(r[1]), Decimal(r[2])) for r in rows}


class Inspector:
    """A read-only look at a copy of a data directory: a throwaway standby with no
    primary and no pg_foreman, on a unix socket only, stopped right after."""

    def __init__(self, image):
        self.image = image
        self.node = Node(9)
        self.node.name = "inspect"
        self.node.data = image
        self.node.sock = os.path.join(os.path.dirname(image), "sock")
        self.node.port = INSPECT_PORT
        self.log = os.path.join(os.path.dirname(image), "postgresql.log")

    def __enter__(self):
        os.makedirs(self.node.sock, exist_ok=True)
        open(os.path.join(self.image, "standby.signal"), "w").close()
        chown_tree(os.path.dirname(self.image))
        opts = (f"-c listen_addresses='' -c port={INSPECT_PORT} -c unix_socket_directories='{self.node.sock}'"
                f" -c shared_preload_libraries='' -c hot_standby=on -c primary_conninfo='' -c primary_slot_name=''"
                f" -c restore_command='' -c archive_mode=off -c logging_collector=off"
                f" -c hba_file='{self.image}/pg_hba.conf' -c ident_file='{self.image}/pg_ident.conf'")
        run_user(["pg_ctl", "-D", self.image, "-l", self.log, "-w", "-t", "60", "-o", opts, "start"], timeout=90)
        return self.node

    def __exit__(self, *exc):
        run_user(["pg_ctl", "-D", self.image, "-m", "immediate", "-w", "stop"], timeout=60, check_rc=False)
        left = kill_and_wait(pids_in_dir(self.image), signal.SIGKILL, 10) if pids_in_dir(self.image) else []
        if not left:
            shutil.rmtree(os.path.dirname(self.image), ignore_errors=True)
        return False


# ---------------------------------------------------------------------------
# The figures of one scenario.

def analyse(old, new, old_rows, new_rows, t_from, t_event, old_gone):
    """Everything the module docstring defines, from the rows of both nodes and
    the trace. old_gone: when the test saw the old primary's last pg_foreman
    process gone (None: not while it watched)."""
    fig = {}
    since = Decimal(repr(t_from))
    trace = [e for e in read_trace() if e["t"] >= since]
    executed = {(e["node"], e["job"], e["sched"]) for e in trace}
    grids = job_grids(new)
    new_keys = {row_key(r) for r in new_rows}
    started_new = {(r["job"], r["sched"]) for r in new_rows if r["status"] != "skipped"}

    # The old primary's start records that the new one does not have: of a run
    # whose command started (lost), or of one that never started (in doubt: the
    # start record was committed locally and never acknowledged).
    lost, in_doubt = [], []
    for r in old_rows:
        if r["status"] == "skipped" or r["started"] < since or row_key(r) in new_keys:
            continue
        (lost if (old.name, r["job"], r["sched"]) in executed else in_doubt).append(r)
    # Each figure: a list of (job, description); its count is the figure.
    fig["lost_records"] = [(r["job"], f"{r['job']} @{r['sched']} {r['status']} run {r['run_id']}") for r in lost]
    fig["in_doubt"] = [(r["job"], f"{r['job']} @{r['sched']} {r['status']} run {r['run_id']}") for r in in_doubt]
    fig["lost_exec"] = [(e["job"], f"{e['job']} @{e['sched']} at {float(e['t']) - t_event:+.2f} s") for e in trace
                        if e["node"] == old.name and (e["job"], e["sched"]) not in started_new]

    # Fire times run twice: the rows of both nodes (a row both have counted
    # once; an in-doubt row is no run), and the executions of the trace.
    doubt = {row_key(r) for r in in_doubt}
    union = {row_key(r): r for r in old_rows if row_key(r) not in doubt}
    union.update({row_key(r): r for r in new_rows})
    groups = {}
    for r in union.values():
        if r["status"] != "skipped" and r["sched"] is not None and r["sched"] >= since:
            groups.setdefault((r["job"], r["sched"], r["attempt"]), []).append(r)
    fig["run_twice_rows"] = [(k[0], f"{k[0]} @{k[1]}: " + ", ".join(f"{r['status']} run {r['run_id']}" for r in v))
                             for k, v in groups.items() if len(v) > 1]
    ex = {}
    for e in trace:
        ex.setdefault((e["job"], e["sched"]), []).append(e)
    fig["run_twice_exec"] = [(k[0], f"{k[0]} @{k[1]} on " + ", ".join(e["node"] for e in v))
                             for k, v in ex.items() if len(v) > 1]

    # Lost fire times: every grid point classified.
    cls = {"run": 0, "record lost": 0, "skipped": 0, "unaccounted": 0}
    unaccounted = []
    for job, (base, period) in grids.items():
        rows_new = [r for r in new_rows if r["job"] == job and r["sched"] is not None]
        if not rows_new:
            continue
        w_end = max(r["sched"] for r in rows_new)
        ran_old = {r["sched"] for r in lost if r["job"] == job}
        covered = set()
        for r in rows_new + [r for r in old_rows if r["job"] == job and r["sched"] is not None]:
            if r["status"] == "skipped":
                m = re.match(r"(\d+) fire times", r["message"])
                covered.update(r["sched"] + k * period for k in range(int(m.group(1)) if m else 1))
        g = base + max(0, int((since - base) / period) + 1) * period
        while g <= w_end:
            if (job, g) in started_new:
                cls["run"] += 1
            elif g in ran_old:
                cls["record lost"] += 1
            elif g in covered:
                cls["skipped"] += 1
            else:
                cls["unaccounted"] += 1
                unaccounted.append(f"{job} @{g}")
            g += period
    fig["fire_times"] = cls
    fig["unaccounted_detail"] = unaccounted

    # At once: the time spans of executions on the old and on the new primary.
    def span(e, rows, bound):
        if e["end"] is not None:
            return float(e["t"]), float(e["end"])
        r = next((r for r in rows if r["job"] == e["job"] and r["sched"] == e["sched"]
                  and r["status"] not in ("skipped", "running") and r["finished"] is not None), None)
        return float(e["t"]), float(r["finished"]) if r else bound
    bound = old_gone if old_gone is not None else float("inf")
    old_spans = [(e["job"], *span(e, old_rows, bound)) for e in trace if e["node"] == old.name]
    new_spans = [(e["job"], *span(e, new_rows, float("inf"))) for e in trace if e["node"] == new.name
                 and e["t"] > Decimal(repr(t_event))]
    fig["at_once"] = [(a[0], f"{a[0]}: old [{a[1] - t_event:+.2f}, {a[2] - t_event:+.2f}] new [{b[1] - t_event:+.2f}, ...]")
                      for a in old_spans for b in new_spans if a[0] == b[0] and a[1] < b[2] and b[1] < a[2]]
    old_last = max((sp[2] for sp in old_spans), default=None)
    new_first = min((sp[1] for sp in new_spans), default=None)
    fig["old_last_end"] = old_last - t_event if old_last is not None else None
    fig["gap"] = (new_first - old_last) if old_last is not None and new_first is not None else None
    return fig


def left_running(node):
    """Runs 'running' on node that started before their tier's leader took the lead."""
    return node.value("SELECT count(*) FROM foreman.job_run r JOIN foreman.tier_lease l USING (tier_id)"
                      " WHERE r.status = 'running' AND r.started_at < l.since")


def follow_takeover(old, t_event, watch=lambda: None, timeout=90):
    """From the event on: Patroni's new leader, its PostgreSQL writable, every tier
    leading, the first job run there; watch() is called at every poll. Returns
    (new node, {milestone: seconds from the event})."""
    others = [n for n in NODES if n is not old]
    m = {}

    def step(fn):
        def f():
            watch()
            return fn()
        return f

    def new_leader():
        name = leader_name(others)
        return BY_NAME[name] if name and name != old.name else None
    new, _ = wait_for("Patroni to elect a new leader", step(new_leader), timeout, 0.05)
    m["leader key"] = time.time() - t_event
    wait_for(f"{new.name} to be writable", step(lambda: is_primary(new)), timeout, 0.05)
    m["writable"] = time.time() - t_event
    wait_for(f"every tier to lead on {new.name}", step(lambda: tiers_lead(new)), timeout, 0.05)
    m["tiers lead"] = time.time() - t_event
    first, _ = wait_for(f"a job to run on {new.name}", step(lambda: executions(node=new, after=t_event)),
                        timeout, 0.05)
    m["first run"] = float(min(e["t"] for e in first)) - t_event
    return new, m


def settle(new, t_event, timeout=60):
    """Until every job has run on the new primary after the event (long: once)."""
    wait_for(f"every job to run on {new.name}",
             lambda: all(executions(job=j, node=new, after=t_event) for j in JOB_NAMES), timeout, 0.2)
    # One more fire time of the 1-second jobs, so that the window closes on rows.
    t = time.time()
    wait_for(f"the 1-second jobs to run again on {new.name}",
             lambda: all(executions(job=j, node=new, after=t) for j in JOB_NAMES if j != "long"), timeout, 0.2)


def steady(p, seconds=3):
    """Before an event: jobs run on the primary p for a few fire times, and none
    has a failure (or crash) as its last outcome."""
    t = time.time()
    wait_for(f"{seconds} runs of beat on {p.name}", lambda: len(executions(job="beat", node=p, after=t)) >= seconds,
             seconds + 20, 0.2)
    wait_for(f"every job's last run on {p.name} to have succeeded",
             lambda: p.value("SELECT bool_and(consecutive_failures = 0) FROM foreman.job WHERE job_name = ANY(%s)",
                             (JOB_NAMES,)) is True, 30, 0.2)


def wait_left_running_zero(scn, new):
    n, took = None, None
    try:
        _, took = wait_for(f"no run left running on {new.name}", lambda: left_running(new) == 0, 10, 0.1)
        n = 0
    except Failure:
        n = left_running(new)
    check(scn, "runs left running on the new primary once its tiers lead", n == 0,
          f"{n}" + (f" (0 after {took:.2f} s)" if took is not None else ""))
    return n


FIGURES = (  # (key, what, kind): kind says when the figure must be 0
    ("run_twice_rows", "fire times run twice (run rows)", "twice"),
    ("run_twice_exec", "fire times run twice (executions)", "twice"),
    ("lost_records", "start records of executed runs missing on the new primary", "lost"),
    ("lost_exec", "executions on the old primary with no run row on the new one", "lost"),
    ("at_once", "a job running on two nodes at once", "always"),
)



def report(scn, fig, milestones, strict_twice=True, strict_lost=False):
    """Prints the figures and asserts the must-be-0 ones."""
    for k, v in milestones.items():
        print(f"    {k:<38} {v:+.2f} s")
    if fig["old_last_end"] is not None:
        print(f"    {'last execution on the old primary ends':<38} {fig['old_last_end']:+.2f} s")
    fc = fig["fire_times"]
    print(f"    fire times in the window: {sum(fc.values())}: run {fc['run']}, run but record lost "
          f"{fc['record lost']}, skipped/coalesced {fc['skipped']}, unaccounted {fc['unaccounted']}")
    if fig["gap"] is not None:
        print(f"    from the old primary's last execution end to the new primary's first start: {fig['gap']:+.2f} s")
    check(scn, "unaccounted fire times", fc["unaccounted"] == 0,
          f"{fc['unaccounted']} {fig['unaccounted_detail'][:5]}")
    strict = {"twice": strict_twice, "lost": strict_lost, "always": True}
    for key, what, kind in FIGURES:
        main = [d for _, d in fig[key]]
        if strict[kind]:
            check(scn, what, not main, f"{len(main)} {main[:5]}")
        else:
            print(f"    (measured) {what}: {len(fig[key])} {[d for _, d in fig[key]][:5]}")
    print(f"    (measured) in-doubt start records (committed on the old primary only, command never started): "
          f"{len(fig['in_doubt'])} {[d for _, d in fig['in_doubt']][:5]}")


SUMMARY = []  # rows of the final table
REJOINS = []  # rows of the rejoin table


def summarize(label, fig, milestones, left):
    """A row of the final table."""
    fc = fig["fire_times"]

    def n(key):
        return len(fig[key])
    old_stop = next((milestones[k] for k in ("old primary's processes gone", "old primary's pg_foreman gone")
                     if k in milestones), None)
    SUMMARY.append({
        "scenario": label,
        "old pg_foreman gone": old_stop,
        "new writable": milestones.get("writable"),
        "first run": milestones.get("first run"),
        "fire times": sum(fc.values()),
        "coalesced": fc["skipped"],
        "record lost": fc["record lost"],
        "unaccounted": fc["unaccounted"],
        "run twice": f"{n('run_twice_rows')} / {n('run_twice_exec')}",
        "left running": left,
        "lost records": f"{n('lost_records')} / {n('lost_exec')}",
        "in doubt": len(fig["in_doubt"]),
        "at once": n("at_once"),
        "gap": fig["gap"],
    })


# ---------------------------------------------------------------------------
# Scenarios.

def kill_primary(scn, sync):
    """kill -9 of the primary's postmaster. The old node's Patroni is held stopped
    (SIGSTOP) for the moment it takes to copy the dead data directory, so that
    the copy is exactly what the old primary left; then Patroni carries on, sees
    its PostgreSQL dead and, primary_start_timeout being 0, fails over."""
    old = primary()
    steady(old)
    t_from = time.time() - 2
    if sync:
        c = cluster_view()
        sync_name = next((m["name"] for m in c["members"] if m["role"] == "sync_standby"), None)
        log(f"{scn}: synchronous standby {sync_name}")
    pm = old.postmaster_pid()
    image = os.path.join(ROOT, "inspect", "data")
    shutil.rmtree(os.path.dirname(image), ignore_errors=True)
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        t_event = time.time()
        os.kill(pm, signal.SIGKILL)
        log(f"{scn}: kill -9 of {old.name}'s postmaster (pid {pm})")
        _, took = wait_for(f"every process of {old.name}'s PostgreSQL to end",
                           lambda: not pids_in_dir(old.data), 30, 0.01)
        old_gone = time.time()
        shutil.copytree(old.data, image, symlinks=True)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    held = time.time() - t_event
    log(f"{scn}: {old.name}'s processes gone {old_gone - t_event:.2f} s after the kill; "
        f"its Patroni was held {held:.2f} s for the copy")
    new, m = follow_takeover(old, t_event)
    if sync:
        check(scn, "the new primary is the synchronous standby", new.name == sync_name, f"{new.name} vs {sync_name}")
    settle(new, t_event)
    left = wait_left_running_zero(scn, new)
    new_rows = run_rows(new)
    with Inspector(image) as insp:
        old_rows = run_rows(insp)
    fig = analyse(old, new, old_rows, new_rows, t_from, t_event, old_gone)
    m = {"old primary's processes gone": old_gone - t_event, "(its Patroni held for the copy)": held, **m}
    report(scn, fig, m, strict_lost=sync)
    summarize(scn, fig, m, left)
    return old, new, t_event


def switchover(scn):
    """patronictl switchover, watched while it runs: the old primary's fast
    shutdown, the candidate's promotion, the first run there."""
    old = primary()
    steady(old)
    t_from = time.time() - 2
    cand = next(n for n in NODES if n is not old and is_streaming(n))
    log(f"{scn}: patronictl switchover {old.name} -> {cand.name}")
    t_event = time.time()
    ctl = subprocess.Popen(user_cmd(["patronictl", "-c", NODES[0].config, "switchover", "--leader", old.name,
                                     "--candidate", cand.name, "--force"]),
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = {"old_gone": None}

    def watch():
        if seen["old_gone"] is None and not foreman_pids(old.data):
            seen["old_gone"] = time.time()
    try:
        new, m = follow_takeover(old, t_event, watch)
        out, _ = ctl.communicate(timeout=90)
    finally:
        if ctl.poll() is None:
            ctl.kill()
            ctl.wait()
    check(scn, "patronictl switchover succeeded", ctl.returncode == 0 and "Successfully switched over" in out,
          out.strip().splitlines()[0] if ctl.returncode else "")
    check(scn, "the candidate is the new primary", new is cand, new.name)
    if seen["old_gone"] is not None:
        m["old primary's pg_foreman gone"] = seen["old_gone"] - t_event
    settle(new, t_event)
    left = wait_left_running_zero(scn, new)
    log_from = len(old.patroni_log_text())
    wait_replica_of(old, new, 90)
    m["old primary streams as a replica"] = time.time() - t_event
    # It rejoined without pg_rewind: its WAL ends at or before the fork of the
    # new timeline, so every record it wrote is on the new primary.
    rewound = "running pg_rewind" in old.patroni_log_text()[log_from:]
    check(scn, "the old primary rejoined without pg_rewind (none of its WAL was lost)", not rewound)
    new_rows = run_rows(new)
    old_rows = run_rows(old)  # the same history now: a replica of the new primary
    fig = analyse(old, new, old_rows, new_rows, t_from, t_event, seen["old_gone"])
    report(scn, fig, m, strict_lost=True)
    summarize(scn, fig, m, left)
    return new


def enable_sync():
    patronictl("edit-config", "--force", "-s", "synchronous_mode=true")

    def ready():
        c = cluster_view()
        return c and any(m["role"] == "sync_standby" for m in c["members"]) and \
            primary().value("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == 1
    _, took = wait_for("a synchronous standby", ready, 60, 0.2)
    log(f"synchronous_mode on: {primary().value('SHOW synchronous_standby_names')} ({took:.1f} s)")


def disable_sync():
    patronictl("edit-config", "--force", "-s", "synchronous_mode=false")
    _, took = wait_for("synchronous_standby_names to be empty",
                       lambda: primary().value("SHOW synchronous_standby_names") == "", 60, 0.2)
    log(f"synchronous_mode off ({took:.1f} s)")


def rejoin(scn, old, new, since_log, t_ref, ref, expect_rewind):
    """The old primary comes back as a replica of the new one: nothing runs there
    and tier_status says why. t_ref: the event the time to streaming counts from."""
    wait_replica_of(old, new, 120)
    took = time.time() - t_ref
    t0 = time.time()
    text = old.patroni_log_text()[since_log:]
    rewound = "running pg_rewind from" in text
    print(f"    {old.name} streams from {new.name} {took:.2f} s after {ref}; pg_rewind ran: {'yes' if rewound else 'no'}")
    if expect_rewind:
        check(scn, "Patroni rejoined the old primary with pg_rewind", rewound)
    check(scn, "the old primary is in recovery", old.value("SELECT pg_is_in_recovery()") is True)
    t = time.time()
    seen = set()
    while time.time() - t < 3:  # watched for 3 s: no pg_foreman process ever appears
        seen.update(foreman_pids(old.data))
        n = old.value("SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_foreman%%'")
        if n:
            seen.add(f"pg_stat_activity: {n}")
        time.sleep(0.1)
    check(scn, "no pg_foreman process on the rejoined node (watched 3 s)", not seen, str(sorted(map(str, seen))))
    check(scn, "no job executed on the rejoined node", not executions(node=old, after=t0))
    st = old.try_query("SELECT tier, leader, state FROM foreman.tier_status ORDER BY tier") or []
    print("    tier_status there: " + "; ".join(f"{r[0]}: leader {r[1]}, {r[2]}" for r in st))
    says = st and all(r[1] is False and r[2] == "not running: server is in recovery" for r in st)
    check(scn, "tier_status says no tier runs because the server is in recovery", says)
    REJOINS.append({"rejoin": scn, "streaming after (s)": took, "from": ref, "pg_rewind": "yes" if rewound else "no",
                    "pg_foreman processes": len(seen), "tier_status": st[0][2] if st else "-"})
    return rewound


def partition(scn, sync):
    """The primary's link goes down: it can reach neither etcd nor the other
    nodes, and they cannot reach it. Patroni there demotes it once it cannot
    renew its leader key; the others elect a new leader once the key expires."""
    old = primary()
    steady(old)
    t_from = time.time() - 2
    since_log = len(old.patroni_log_text())
    t_event = time.time()
    subprocess.run(["ip", "link", "set", old.veth, "down"], check=True)
    log(f"{scn}: {old.name} cut off (ip link set {old.veth} down)")
    seen = {"old_gone": None, "refusing": None, "readonly": None, "sync_wait": set(), "probe": None,
            "cancel": None, "rows": None}

    def watch_old():
        pids = foreman_pids(old.data)
        for p in pids:  # a coordinator waiting for a standby shows "waiting for <LSN>"
            title = cmdline(p)
            if " waiting for " not in title:
                continue
            seen["sync_wait"].add(p)
            # Two probes, before Patroni's demotion (4-5 s after the cut) sends
            # its own SIGTERM: SIGTERM to tier fast's coordinator (does it
            # exit?), SIGINT (pg_cancel_backend) to tier par's (does its job
            # start anyway?).
            if sync and seen["probe"] is None and "/fast " in title:
                seen["probe"] = {"pid": p, "title": title, "at": time.time(), "gone": None}
                os.kill(p, signal.SIGTERM)
            if sync and seen["cancel"] is None and "/par " in title:
                seen["cancel"] = {"pid": p, "title": title, "at": time.time()}
                os.kill(p, signal.SIGINT)
        probe = seen["probe"]
        if probe and probe["gone"] is None and not alive(probe["pid"]):
            probe["gone"] = time.time()
        if seen["old_gone"] is None and not pids:
            seen["old_gone"] = time.time()
        if seen["rows"] is None:
            try:
                if old.query("SELECT pg_is_in_recovery()")[0][0]:
                    seen["readonly"] = seen["readonly"] or time.time()
                    # Its rows now, while it is demoted and cut off: Patroni may
                    # restart it at any moment (and rewind it once it is back).
                    seen["rows"] = run_rows(old)
            except psycopg2.Error:  # shutting down, or down
                if seen["refusing"] is None:
                    seen["refusing"] = time.time()
    new, m = follow_takeover(old, t_event, watch_old)
    demoted = True
    try:
        wait_for(f"{old.name} to be demoted (read-only) and its rows read",
                 lambda: (watch_old(), seen["rows"] is not None)[1], 60, 0.05)
    except Failure:
        demoted = False
    if seen["refusing"] is not None:
        m["old primary refuses connections"] = seen["refusing"] - t_event
    if seen["old_gone"] is not None:
        m["old primary's pg_foreman gone"] = seen["old_gone"] - t_event
    if seen["readonly"] is not None:
        m["old primary read-only (demoted)"] = seen["readonly"] - t_event
    text = old.patroni_log_text()[since_log:]
    escalated = "Timeout during postmaster stop" in text
    if sync:
        print(f"    coordinators seen waiting for the synchronous standby on {old.name}: {len(seen['sync_wait'])}")
        probe = seen["probe"]
        if probe is None:
            check(scn, "a coordinator was seen waiting for the synchronous standby (to probe SIGTERM)", False)
        else:
            # Ordered, not timed: it must be gone before the demotion's own
            # shutdown begins (the node refuses connections), seconds later.
            took = (probe["gone"] - probe["at"]) if probe["gone"] else None
            demotion = seen["refusing"] or seen["readonly"]
            exited = probe["gone"] is not None and demotion is not None and probe["gone"] < demotion
            check(scn, "a coordinator waiting for the synchronous standby exits on SIGTERM (before the demotion)",
                  exited, f"pid {probe['pid']} ('{probe['title']}') SIGTERMed at {probe['at'] - t_event:+.2f} s, "
                  + (f"exited after {took:.2f} s" if took is not None else "never exited")
                  + (f"; the demotion began at {demotion - t_event:+.2f} s" if demotion else ""))
        print(f"    (measured) Patroni had to abort the old primary's fast shutdown (primary_stop_timeout): "
              f"{'yes' if escalated else 'no'}")
        # The start records the new primary has (the synchronous standby
        # acknowledged them before the cut): a run recorded up to 10 ms ahead
        # of its fire time (kRecordAheadUs) may start just after the cut, and
        # may - its record is on the new primary, which settles it.
        acked = {(r["job"], r["sched"], r["run_id"]) for r in run_rows(new)}
        after_cut = executions(node=old, after=t_event)
        unacked = [e for e in after_cut if (e["job"], e["sched"], e["run_id"]) not in acked]
        cancel = seen["cancel"]
        if cancel is None:
            check(scn, "tier par's coordinator was seen waiting for the synchronous standby (to probe a cancel)",
                  False)
        else:
            ran = [e for e in unacked if e["job"] in CANCEL_PROBE_JOBS]
            check(scn, "a coordinator whose wait for the synchronous standby is cancelled starts no run "
                  "the standby does not have", not ran,
                  f"pid {cancel['pid']} cancelled at {cancel['at'] - t_event:+.2f} s; then "
                  + ", ".join(f"{e['job']} run {e['run_id']} started at {float(e['t']) - t_event:+.2f} s"
                              for e in ran))
            unconfirmed = [r["job"] for r in (seen["rows"] or []) if r["reason"] == "start not confirmed"]
            print(f"    (measured) runs the old primary recorded as not started (start not confirmed): "
                  f"{len(unconfirmed)} {unconfirmed[:5]}")
    check(scn, "Patroni demoted the isolated old primary", demoted, "" if demoted else diagnose_stuck(old))
    gone = f"gone at {seen['old_gone'] - t_event:+.2f} s" if seen["old_gone"] else "still there"
    if sync:
        # The guarantee: a start record cannot commit without the standby;
        # one whose wait was cancelled (the probe) does not start its run. So
        # every run the old primary started after the cut has its record on
        # the new primary (acknowledged before the cut).
        check(scn, "no run started on the old primary after the cut without its start record on the new primary",
              not unacked, f"{[(e['job'], e['run_id'], float(e['t']) - t_event) for e in unacked]}")
        print(f"    (measured) runs started on the old primary after the cut: {len(after_cut)}, each recorded "
              f"before it (acknowledged by the standby): "
              f"{[(e['job'], round(float(e['t']) - t_event, 3)) for e in after_cut]}")
        print(f"    (measured) pg_foreman processes on the old primary: {gone}; "
              f"the new primary's first run at {m['first run']:+.2f} s")
    else:
        # The guarantee: Patroni demotes it (loop_wait + 2 * retry_timeout < ttl)
        # before the leader key expires, and its fast shutdown cancels what runs.
        check(scn, "pg_foreman stopped on the old primary before the new primary ran a job",
              seen["old_gone"] is not None and seen["old_gone"] - t_event < m["first run"],
              f"{gone}, the new primary's first run at {m['first run']:+.2f} s")
    settle(new, t_event)
    left = wait_left_running_zero(scn, new)
    new_rows = run_rows(new)
    old_rows = seen["rows"] or []
    fig = analyse(old, new, old_rows, new_rows, t_from, t_event, seen["old_gone"])
    report(scn, fig, m, strict_twice=sync, strict_lost=sync)
    summarize(scn, fig, m, left)
    subprocess.run(["ip", "link", "set", old.veth, "up"], check=True)
    t_back = time.time()
    log(f"{scn}: {old.name} reconnected")
    return old, new, since_log, t_back


def diagnose_stuck(node):
    lines = []
    for p in pids_in_dir(node.data):
        try:
            with open(f"/proc/{p}/wchan") as f:
                wchan = f.read()
        except OSError:
            wchan = "?"
        lines.append(f"{p} {cmdline(p)} (wchan {wchan})")
    return "; ".join(lines)


# ---------------------------------------------------------------------------

def print_summary():
    print("\n=== figures (seconds from the event) ===")
    cols = ["scenario", "old pg_foreman gone", "new writable", "first run", "fire times", "coalesced", "record lost", "unaccounted", "run twice",
            "left running", "lost records", "in doubt", "at once", "gap"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in SUMMARY:
        cells = []
        for c in cols:
            v = r[c]
            cells.append("-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v))
        print("| " + " | ".join(cells) + " |")
    if REJOINS:
        cols = list(REJOINS[0])
        print("\n| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in REJOINS:
            print("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


def main():
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    status = 0
    try:
        log(f"PostgreSQL from {PG_BIN}; servers run as {TEST_USER}; files in {ROOT}")
        start_etcd()
        boot_cluster()
        p = primary()
        create_workload(p)
        log(f"workload running on {p.name}: {', '.join(JOB_NAMES)}")

        print("\n=== 1. kill -9 of the primary's postmaster (asynchronous replication) ===", flush=True)
        kill_primary("1 kill -9 (async)", sync=False)
        print("\n=== 2. patronictl switchover ===", flush=True)
        switchover("2 switchover")
        print("\n=== 3. synchronous_mode: true, kill -9 of the primary's postmaster ===", flush=True)
        enable_sync()
        since = {n.name: len(n.patroni_log_text()) for n in NODES}
        old, new, t_kill = kill_primary("3 kill -9 (sync)", sync=True)
        print("\n=== 4. the old primary of 3 rejoins as a replica ===", flush=True)
        rejoin("4 rejoin after 3", old, new, since[old.name], t_kill, "the kill", expect_rewind=False)
        print("\n=== 5s. partition of the primary, synchronous_mode: true ===", flush=True)
        old, new, since_log, t_back = partition("5s partition (sync)", sync=True)
        print("\n=== 4. the old primary of 5s rejoins ===", flush=True)
        rejoin("4 rejoin after 5s", old, new, since_log, t_back, "the link came back", expect_rewind=True)
        print("\n=== 5a. partition of the primary, asynchronous replication ===", flush=True)
        disable_sync()
        old, new, since_log, t_back = partition("5a partition (async)", sync=False)
        print("\n=== 4. the old primary of 5a rejoins ===", flush=True)
        rejoin("4 rejoin after 5a", old, new, since_log, t_back, "the link came back", expect_rewind=True)
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except Failure as e:
        log(f"FAILED: {e}")
        status = 1
    except Exception:
        traceback.print_exc()
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log("stopping Patroni, PostgreSQL and etcd")
        stop_everything()
        leftover = [d for d in [n.data for n in NODES] if pids_in_dir(d)]
        if leftover:
            log(f"processes left in {leftover}")
            status = status or 1
    print_summary()
    if FAILED:
        print("\nFAILED assertions:")
        for scn, what in FAILED:
            print(f"  [{scn}] {what}")
        status = status or 1
    log("done" if status == 0 else f"exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
