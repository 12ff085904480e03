#!/usr/bin/env bash
# test-ha.sh: pg_foreman under Patroni with etcd (issue 18). Called by
# `make test-ha` (after deps, build and install); exits non-zero on failure.
#
# One etcd and three Patroni nodes, each in a network namespace of its own
# joined by a bridge in a fourth ("hub") namespace that also holds etcd and the
# driver (test/ha/ha_test.py). Namespaces are what let scenario 5 cut one node
# off the network (its link goes down) while the others go on. Everything the
# test starts runs as TEST_USER; this script (root: namespaces) only builds
# and removes the network and, on any exit, stops whatever still runs in it.
#
# Settings (environment):
#   HA_ROOT        directory for data, configs and logs (/tmp/ha-pg_foreman)
#   HA_NETNS       prefix of the namespace names (pgfha): <prefix>-hub, <prefix>-n1..3
#   HA_SUBNET      first three octets of the private subnet (10.199.47): hub .1, nodes .11-.13
#   HA_ETCD_PORT, HA_ETCD_PEER_PORT      etcd client and peer ports (54701, 54702)
#   HA_REST_PORT, HA_PG_PORT             first Patroni REST and PostgreSQL port (54711, 54721;
#                                        node i uses +i-1), HA_INSPECT_PORT (54790)
#   PG_CONFIG      the PostgreSQL to use (scripts/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. scripts/lib.sh

export HA_ROOT=${HA_ROOT:-/tmp/ha-pg_foreman}
export HA_NETNS=${HA_NETNS:-pgfha}
export HA_SUBNET=${HA_SUBNET:-10.199.47}
export HA_ETCD_PORT=${HA_ETCD_PORT:-54701} HA_ETCD_PEER_PORT=${HA_ETCD_PEER_PORT:-54702}
export HA_REST_PORT=${HA_REST_PORT:-54711} HA_PG_PORT=${HA_PG_PORT:-54721} HA_INSPECT_PORT=${HA_INSPECT_PORT:-54790}
export PG_BIN TEST_USER

case "$HA_ROOT" in
	/tmp/ha-*) ;;
	*) echo "HA_ROOT must be a directory /tmp/ha-*: it is removed and recreated" >&2; exit 2 ;;
esac
if ! is_root; then
	echo "make test-ha needs root: it creates network namespaces (servers still run as $TEST_USER)" >&2
	exit 2
fi
for tool in patroni patronictl etcd ip setpriv; do
	command -v "$tool" >/dev/null || { echo "$tool is missing: run 'bash scripts/deps.sh ha'" >&2; exit 2; }
done
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import psycopg2' ||
	{ echo "Debian's python3-psycopg2 is missing: run 'bash scripts/deps.sh ha'" >&2; exit 2; }

HUB=$HA_NETNS-hub
NODES=("$HA_NETNS-n1" "$HA_NETNS-n2" "$HA_NETNS-n3")
ALL_NS=("$HUB" "${NODES[@]}")

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# Stops what still runs in our namespaces (the driver stops everything it
# started itself; this is the net under it, for a crash or Ctrl-C), then
# removes the namespaces and says if any process of the test survived.
DRIVER=""
cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	local ns pids left p
	# The driver first: it stops its processes by pid, in order.
	if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
		kill -TERM "$DRIVER" 2>/dev/null || true
		for _ in $(seq 600); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 0.1; done
	fi
	for sig in TERM KILL; do
		pids=""
		for ns in "${ALL_NS[@]}"; do
			ns_exists "$ns" && pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
		done
		pids=$(echo $pids)
		[ -z "$pids" ] && break
		echo "test-ha: stopping leftover processes ($sig): $pids" >&2
		kill -"$sig" $pids 2>/dev/null || true
		for _ in $(seq 50); do
			left=""
			for p in $pids; do kill -0 "$p" 2>/dev/null && left+=" $p"; done
			[ -z "$left" ] && break
			sleep 0.1
		done
	done
	for ns in "${ALL_NS[@]}"; do
		ns_exists "$ns" && ip netns del "$ns"
	done
	# Every server process of the test has its working directory under HA_ROOT.
	left=""
	for p in /proc/[0-9]*; do
		case "$(readlink "$p/cwd" 2>/dev/null)" in
			"$HA_ROOT"|"$HA_ROOT"/*) left+="$(ps -o pid=,args= -p "${p#/proc/}" 2>/dev/null)"$'\n' ;;
		esac
	done
	left=$(echo "$left" | sed '/^\s*$/d')
	if [ -n "$left" ]; then
		echo "test-ha: FAILED to stop these processes:" >&2
		echo "$left" >&2
		status=1
	fi
	left=$(ip netns list | awk '{print $1}' | grep -E "^$HA_NETNS-(hub|n[0-9])$" || true)
	if [ -n "$left" ]; then
		echo "test-ha: FAILED to remove network namespaces: $left" >&2
		status=1
	fi
	exit $status
}

# A namespace of ours left by a run that was killed: remove it if nothing
# lives in it (another run may be using it otherwise).
for ns in "${ALL_NS[@]}"; do
	if ns_exists "$ns"; then
		if [ -n "$(ip netns pids "$ns")" ]; then
			echo "network namespace $ns is in use (another make test-ha?); set HA_NETNS" >&2
			exit 2
		fi
		ip netns del "$ns"
	fi
done
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ensure_test_user
stage_dir "$HA_ROOT"

# The hub: a bridge with etcd's address; each node a veth pair into it.
ip netns add "$HUB"
ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" addr add "$HA_SUBNET.1/24" dev br0
ip -n "$HUB" link set br0 up
for i in 1 2 3; do
	ns=${NODES[$((i - 1))]}
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$HUB" link add "veth-n$i" type veth peer name eth0 netns "$ns"
	ip -n "$HUB" link set "veth-n$i" master br0 up
	ip -n "$ns" addr add "$HA_SUBNET.1$i/24" dev eth0
	ip -n "$ns" link set eth0 up
done

# In the background and waited for, so that a signal to this script runs the
# trap at once (which then asks the driver to stop first).
start=$(date +%s)
ip netns exec "$HUB" /usr/bin/python3 -u test/ha/ha_test.py &
DRIVER=$!
status=0
wait "$DRIVER" || status=$?
DRIVER=""
if [ $status -ne 0 ]; then
	echo "test-ha: FAILED (exit $status) after $(($(date +%s) - start)) s; logs in $HA_ROOT"
	exit $status
fi
echo "test-ha: passed in $(($(date +%s) - start)) s"
