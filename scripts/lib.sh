# lib.sh: shared by the project's scripts. Source it; it defines:
#   PG_CONFIG, PG_BIN, PGXS_DIR, PG_REGRESS
#                                 the PostgreSQL the project builds and tests against:
#                                 PG_CONFIG if given, else Debian's PostgreSQL PG_MAJOR
#   TEST_USER                     the unprivileged user servers run as
#   TEST_ROOT                     where test clusters and their logs live
#   REGRESS_PORT                  pg_regress's temporary instance (TAP picks free ports
#                                 itself, reserved in PG_TEST_PORT_DIR)
#   ensure_test_user [--no-port-dir]
#                                 create TEST_USER if missing (as root), and
#                                 PG_TEST_PORT_DIR (which TAP needs) unless told not to
#   as_test_user CMD...           run CMD as TEST_USER (directly when not root)
#   stage_dir DIR                 a fresh DIR owned by TEST_USER
# PostgreSQL refuses to run as root, so as root every server runs as TEST_USER.
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
if [ -x "$PG_CONFIG" ]; then
	PG_BIN=$("$PG_CONFIG" --bindir)
	PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
else
	PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
	PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
fi
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
TEST_USER=${TEST_USER:-pgforeman}
TEST_ROOT=${TEST_ROOT:-/tmp/pg_foreman-test}
REGRESS_PORT=${REGRESS_PORT:-54400}
# TAP clusters (PostgreSQL::Test::Cluster) take free ports and reserve them in
# this directory, so concurrent runs on one machine never take the same one.
export PG_TEST_PORT_DIR=${PG_TEST_PORT_DIR:-/tmp/pg_foreman-portlock}

is_root() { [ "$(id -u)" -eq 0 ]; }

ensure_test_user() {
	is_root || return 0
	id "$TEST_USER" >/dev/null 2>&1 ||
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$TEST_USER"
	[ "${1:-}" = --no-port-dir ] && return 0
	mkdir -p "$PG_TEST_PORT_DIR"
	chmod 1777 "$PG_TEST_PORT_DIR"
}

as_test_user() {
	if is_root; then
		runuser -u "$TEST_USER" -- env HOME=/tmp PATH="$PG_BIN:$PATH" PG_TEST_PORT_DIR="$PG_TEST_PORT_DIR" "$@"
	else
		env PATH="$PG_BIN:$PATH" "$@"
	fi
}

stage_dir() {
	rm -rf "$1"
	mkdir -p "$1"
	is_root && chown -R "$TEST_USER" "$1"
	return 0
}
