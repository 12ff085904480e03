#!/usr/bin/env bash
# deps.sh [test|bench|fuzz|deb|majors|ha]: install the Debian packages the
# build (and the tests, the benchmarks, the fuzzers, the Debian package, the
# Debian roots of make test-majors or the Patroni HA test) need, and only
# those that are missing.
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
	test) pkgs+=(libxml2-utils librsvg2-bin) ;;                 # xmllint, rsvg-convert: TAP 070 checks the timeline SVG
	# make bench: pg_cron to compare with, pgbench (contrib) for the expiry
	# writer, matplotlib for the pictures (start delays, runs/s over time).
	bench) pkgs+=("postgresql-$PG_MAJOR-cron" "postgresql-contrib" python3-matplotlib) ;;
	fuzz) pkgs+=(clang libclang-rt-dev) ;;
	# make test-ha: Patroni (it pulls python3-psycopg2 and python3-yaml), etcd,
	# and iproute2 for the network namespaces the test partitions.
	ha) pkgs+=(patroni etcd-server etcd-client python3-psycopg2 iproute2) ;;
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

# Progress: a line per step, and apt's own progress (APT::Status-Fd) as one
# line per fifth of the download and of the installation. apt's warnings are
# kept back and shown only when it fails.
echo "installing ${#missing[@]} Debian packages (and what they need): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_log=$(mktemp)
trap 'rm -f "$apt_log"' EXIT
apt_failed() { echo "apt-get failed:" >&2; cat "$apt_log" >&2; exit 1; }
echo "  apt-get update: reading the package lists"
apt-get update -qq >"$apt_log" 2>&1 || apt_failed
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold -o APT::Status-Fd=3 \
	"${missing[@]}" 3>&1 >>"$apt_log" 2>&1 |
	awk -F: '$1 == "dlstatus" || $1 == "pmstatus" {
		phase = ($1 == "dlstatus") ? "downloading" : "installing"
		step = int($3 / 20)
		if (!(phase in seen) || step > seen[phase]) {
			seen[phase] = step
			printf "  apt-get: %s %3d%%  %s\n", phase, step * 20, $4
			fflush()
		}
	}' || apt_failed
echo "  installed"
