#!/usr/bin/env bash
# package-check.sh N DEB: what a DBA does with the package, on a Debian
# machine that has postgresql-N and nothing of pg_foreman: install DEB with
# apt, make a cluster the Debian way (pg_createcluster), preload pg_foreman,
# start it, CREATE EXTENSION, schedule a job and see it run (bounded wait with
# foreman.wait_for_run). Run as root inside a fresh root by scripts/majors.sh;
# the server runs as postgres and is stopped by its pid however this ends.
set -euo pipefail
n=${1:?usage: package-check.sh N DEB}
deb=${2:?usage: package-check.sh N DEB}
cluster=foreman_check
port=${PACKAGE_CHECK_PORT:-54690}
data=/var/lib/postgresql/$n/$cluster

stop_server() {
	local pid
	[ -f "$data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$data/postmaster.pid")
	echo "== stopping the server (postmaster pid $pid)"
	pg_ctlcluster "$n" "$cluster" stop -m fast || kill -TERM "$pid" 2>/dev/null || true
	# pg_ctlcluster waits for the stop; a kill may not have: wait, bounded.
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "the postmaster (pid $pid) did not stop" >&2
	return 1
}
trap stop_server EXIT

echo "== apt-get install $deb"
apt-get install -y -q --no-install-recommends "$deb"
dpkg-query -W -f='${Package} ${Version} ${Status}\n' "postgresql-$n-foreman"

echo "== pg_createcluster $n $cluster, shared_preload_libraries = 'pg_foreman'"
pg_createcluster "$n" "$cluster" --port "$port" >/dev/null
# pg_conftool: Debian's way of changing a cluster's postgresql.conf.
pg_conftool "$n" "$cluster" set shared_preload_libraries pg_foreman
pg_conftool "$n" "$cluster" set listen_addresses ''
mkdir -p /var/run/postgresql
chown postgres:postgres /var/run/postgresql
pg_ctlcluster "$n" "$cluster" start
echo "   started: postmaster pid $(head -n 1 "$data/postmaster.pid")"

psql_check() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"; }

echo "package check: server $(psql_check -At -c 'SHOW server_version' | cut -d' ' -f1)"
[ "$(psql_check -At -c 'SHOW shared_preload_libraries')" = pg_foreman ] || {
	echo "package check: shared_preload_libraries is not pg_foreman" >&2
	exit 1
}
out=$(psql_check -At <<'SQL'
CREATE EXTENSION pg_foreman;
CREATE TABLE heartbeat (at timestamptz NOT NULL);
SELECT clock_timestamp() AS t0 \gset
SELECT foreman.schedule('heartbeat', '1 second', 'INSERT INTO heartbeat VALUES (now())') > 0;
SELECT status FROM foreman.wait_for_run('heartbeat', :'t0', timeout => '60 seconds');
SELECT count(*) > 0 FROM heartbeat;
SELECT extversion = default_version FROM pg_extension, pg_available_extensions
 WHERE extname = 'pg_foreman' AND name = extname;
SQL
)
echo "$out"
[ "$out" = "$(printf 't\nsucceeded\nt\nt')" ] || { echo "package check: unexpected output" >&2; exit 1; }
echo "package check: postgresql-$n-foreman installed, CREATE EXTENSION, job 'heartbeat' ran"
