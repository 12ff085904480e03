# lib.sh: shared by the project's scripts. Source it; it defines:
#   PG_BIN, PGXS_DIR, PG_REGRESS  where PostgreSQL 15 lives
#   TEST_USER                     the unprivileged user servers run as
#   ensure_test_user              create TEST_USER if missing (as root)
#   as_test_user CMD...           run CMD as TEST_USER (directly when not root)
#   stage_dir DIR                 a fresh DIR owned by TEST_USER
# PostgreSQL refuses to run as root, so as root every server runs as TEST_USER.
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
TEST_USER=${TEST_USER:-pgforeman}
TEST_ROOT=${TEST_ROOT:-/tmp/pg_foreman-test}

is_root() { [ "$(id -u)" -eq 0 ]; }

ensure_test_user() {
	is_root || return 0
	id "$TEST_USER" >/dev/null 2>&1 ||
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$TEST_USER"
}

as_test_user() {
	if is_root; then
		runuser -u "$TEST_USER" -- env HOME=/tmp PATH="$PG_BIN:$PATH" "$@"
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
