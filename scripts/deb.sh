#!/usr/bin/env bash
# deb.sh: the Debian package postgresql-$PG_MAJOR-foreman, built as Debian
# builds its PostgreSQL extensions (debian/, pg_buildext, dh --with pgxs_loop),
# into build/deb/. Called by `make deb` after deps.sh deb.
#
# What is packaged: the files git tracks (as they are in the work tree) and
# untracked files it does not ignore, copied into build/deb/src, so build
# outputs and other junk of the work tree never reach the package.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

out=build/deb
rm -rf "$out"
mkdir -p "$out/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
		[ -e "$f" ] && cp -a --parents "$f" "$out/src/"
	done
else
	tar -C . --exclude=./build --exclude='*.o' --exclude='*.so' -cf - . | tar -C "$out/src" -xf -
fi

cd "$out/src"
# debian/control lists the binary package of each major built; for one major,
# the one this machine builds for.
export PG_SUPPORTED_VERSIONS=$PG_MAJOR
pg_buildext updatecontrol >/dev/null
[ "$(pg_buildext supported-versions)" = "$PG_MAJOR" ] || {
	echo "make deb: PostgreSQL $PG_MAJOR is not a version debian/pgversions allows" >&2
	exit 1
}
echo "=== dpkg-buildpackage: postgresql-$PG_MAJOR-foreman (log: $out/build.log)"
if ! dpkg-buildpackage -b -us -uc -j"$(nproc)" >../build.log 2>&1; then
	tail -n 40 ../build.log
	echo "make deb: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
fi
cd ../../..
deb=$(ls "$out"/postgresql-"$PG_MAJOR"-foreman_*.deb)
dpkg-deb --field "$deb" Package Version Depends
echo "built: $deb"
