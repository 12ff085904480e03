#!/usr/bin/env bash
# deps.sh [bench|fuzz|deb|majors]: install the Debian packages the build, the
# tests (and optionally the benchmarks, the fuzzers, the Debian package, or the
# Debian roots of make test-majors) need, and only those that are missing.
# Runs apt-get as root; as another user it says what to install and fails.
set -euo pipefail
PG_MAJOR=${PG_MAJOR:-15}

pkgs=(
	"postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"  # server, pg_config, PGXS, pg_regress, TAP modules
	g++ make cmake libfmt-dev libgtest-dev                   # build and unit tests
	perl libipc-run-perl                                     # prove and PostgreSQL::Test::Cluster
	util-linux passwd procps tzdata                          # runuser, useradd, ps; time zones for cron tests
)
case "${1:-}" in
	bench) pkgs+=("postgresql-$PG_MAJOR-cron" "postgresql-contrib") ;;
	fuzz) pkgs+=(clang libclang-rt-dev) ;;
	# pg_buildext and dh's pgxs_loop come with postgresql-server-dev-all.
	deb) pkgs+=(build-essential debhelper dpkg-dev postgresql-server-dev-all) ;;
	majors) pkgs+=(debootstrap debian-archive-keyring zstd git) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "pg_foreman needs these Debian packages: ${missing[*]}" >&2
	echo "install them as root: apt-get install ${missing[*]}" >&2
	exit 1
fi

# Debian's postgresql-common creates and starts a 'main' cluster on install;
# we start our own throwaway clusters and want no server we did not ask for.
if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "install ok installed"; then
	mkdir -p /etc/postgresql-common
	[ -f /etc/postgresql-common/createcluster.conf ] ||
		echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
