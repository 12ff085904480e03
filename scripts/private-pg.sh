#!/usr/bin/env bash
# private-pg.sh DIR: a private copy of the installed PostgreSQL PG_MAJOR
# (binaries, share, server headers) under DIR, and its pg_config path on
# stdout. PostgreSQL finds its share and lib directories relative to its
# binaries, so `make install PG_CONFIG=DIR/usr/lib/postgresql/N/bin/pg_config`
# installs pg_foreman there and the tests of that tree use it: two checkouts
# can build, install and test at once without replacing each other's library
# in the system's PostgreSQL. For development; CI uses the system's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
dir=${1:?usage: private-pg.sh DIR}
sys=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
[ -x "$sys" ] || { echo "PostgreSQL $PG_MAJOR is not installed: run make deps" >&2; exit 1; }
if [ ! -x "$dir/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" ]; then
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include"
	cp -a "/usr/lib/postgresql/$PG_MAJOR" "$dir/usr/lib/postgresql/"
	cp -a "/usr/share/postgresql/$PG_MAJOR" "$dir/usr/share/postgresql/"
	cp -a /usr/include/postgresql "$dir/usr/include/"
fi
echo "$dir/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
