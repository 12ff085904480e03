#!/usr/bin/env bash
# majors.sh: pg_foreman on other PostgreSQL majors, each in a minimal Debian
# root of the suite that ships it.
#
#   majors.sh test [N...]     make test-majors: for each major (default
#                             $PG_MAJORS, "17 18"), side by side (FOREMAN_JOBS
#                             at a time; default all): every suite (make
#                             PG_MAJOR=N test) and make deb in a build root,
#                             then the built package in a fresh root; one line
#                             per major
#   majors.sh check-deb [DEB] make deb-check: the package built by make deb on
#                             this machine, in a fresh root of this machine's
#                             suite (Debian 12: bookworm, PostgreSQL 15)
#
# Roots. For a major N the first suite of FOREMAN_SUITES (bookworm trixie
# forky sid) whose package index has postgresql-server-dev-N is used (found
# with apt, state under FOREMAN_CACHE/apt). debootstrap builds a minbase root
# from FOREMAN_MIRROR (default: this machine's Debian mirror); apt installs
# postgresql-N in it: that is the *runtime* root, cached as a tarball; the
# build and test dependencies (scripts/deps.sh deb) come on top: the *build*
# root, cached too. Both live under FOREMAN_CACHE/roots (default
# /var/cache/pg_foreman), named by suite, major and a hash of what makes them,
# so a second run downloads nothing, and a change of deps.sh makes new ones.
# A suite whose Release file is past its Valid-Until date (testing and sid of
# an archive snapshot) gets check-valid-until=no in its root, for it only.
#
# A run. Roots are unpacked under FOREMAN_WORK (default /tmp/pg_foreman-majors);
# /proc, /sys, /dev, /dev/pts and a tmpfs /dev/shm (mode 1777) are mounted in,
# and unmounted however the run ends (failure, Ctrl-C, TERM: the EXIT trap).
# The project is a git clone of the current commit (HEAD; uncommitted changes
# are not tested, and the run says so). Servers run as unprivileged users
# (pgforeman for the suites, postgres for the package); a process left inside
# a root at the end is reported and killed by its pid, and the run fails.
# Logs stay in FOREMAN_WORK/pgN/ (suites.log, deb.log, package.log).
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=$(pwd)

FOREMAN_CACHE=${FOREMAN_CACHE:-/var/cache/pg_foreman}
FOREMAN_WORK=${FOREMAN_WORK:-/tmp/pg_foreman-majors}
FOREMAN_SUITES=${FOREMAN_SUITES:-bookworm trixie forky sid}
PG_MAJORS=${PG_MAJORS:-17 18}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "majors: $*" >&2; exit 1; }
say() { echo "majors: $*"; }
# tag N: lines of a log excerpt, marked with their major (majors run side by
# side, so their excerpts can interleave).
tag() { sed "s/^/pg$1| /"; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"

# host_uri SUITE DEFAULT: the URI of this machine's apt source that serves
# SUITE (deb822 .sources or one-line sources.list), else DEFAULT.
host_uri() {
	local uri
	uri=$(awk -v c="$1" '
		/^URIs:/ { u = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) { print u; exit } }
		/^deb / { sub(/ \[[^]]*\]/, ""); if ($3 == c) { print $2; exit } }' \
		/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
	echo "${uri:-$2}"
}
CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-none}")
# This machine's Debian mirror and security mirror (the same URIs as its apt).
FOREMAN_MIRROR=${FOREMAN_MIRROR:-$(host_uri "$CODENAME" http://deb.debian.org/debian)}
FOREMAN_SECURITY_MIRROR=${FOREMAN_SECURITY_MIRROR:-$(host_uri "$CODENAME-security" http://deb.debian.org/debian-security)}

# --- mounts and processes ----------------------------------------------------

ROOTS=()       # roots unpacked by this process (removed at exit unless FOREMAN_KEEP=yes)
CHILD=""       # the command running in the background (see run)
MAJOR_PIDS=()  # the majors tested side by side (see cmd_test)

mount_root() {
	local root=$1
	# rslave: nothing mounted below $root/dev (pts, shm) propagates back to
	# the host's /dev, even where / is a shared mount. A chain of &&: the
	# callers test the result (where bash's set -e does not apply).
	mkdir -p "$root/proc" "$root/sys" "$root/dev" &&
		mount -t proc proc "$root/proc" &&
		mount --bind /sys "$root/sys" && mount --make-rslave "$root/sys" &&
		mount --bind /dev "$root/dev" && mount --make-rslave "$root/dev" &&
		mkdir -p "$root/dev/pts" "$root/dev/shm" &&
		mount --bind /dev/pts "$root/dev/pts" &&
		mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
}

# mounts_under ROOT: mount points below ROOT, deepest (latest) first. Every
# one is this run's: ROOT is a directory it made (debootstrap's own mounts
# included).
mounts_under() {
	local root
	root=$(readlink -f "$1")
	awk -v r="$root/" 'substr($2, 1, length(r)) == r { print $2 }' /proc/mounts | tac
}

# umount_root ROOT: unmount everything below ROOT.
umount_root() {
	local m
	for m in $(mounts_under "$1"); do
		umount "$m" 2>/dev/null || umount -l "$m" || echo "majors: could not unmount $m" >&2
	done
}

# pids_in_root ROOT: processes whose root directory is ROOT.
pids_in_root() {
	local root p link
	root=$(readlink -f "$1")
	for p in /proc/[0-9]*; do
		link=$(readlink "$p/root" 2>/dev/null) || continue
		[ "$link" = "$root" ] && echo "${p#/proc/}"
	done
	return 0
}

# stop_leftovers ROOT [quiet]: kill (by pid) what is still running inside
# ROOT; false if there was anything (listed unless quiet: after Ctrl-C or TERM
# the interrupted test is expected there).
stop_leftovers() {
	local root=$1 quiet=${2:-} pids pid i
	pids=$(pids_in_root "$root")
	[ -z "$pids" ] && return 0
	if [ -n "$quiet" ]; then
		echo "majors: stopping the $(echo "$pids" | wc -w) processes of the interrupted run inside $root" >&2
	else
		echo "majors: processes left inside $root:" >&2
		for pid in $pids; do ps -o pid=,user=,args= -p "$pid" >&2 || true; done
	fi
	for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
	for i in $(seq 1 50); do
		[ -z "$(pids_in_root "$root")" ] && return 1
		sleep 0.1
	done
	for pid in $(pids_in_root "$root"); do kill -KILL "$pid" 2>/dev/null || true; done
	return 1
}

# remove DIR: DIR and everything in it, after unmounting what is mounted
# below it (a bound /dev must never be descended into); refuses otherwise.
remove() {
	[ -e "$1" ] || return 0
	umount_root "$1"
	[ -z "$(mounts_under "$1")" ] || die "$1 still has mounts; not removed"
	rm -rf --one-file-system "$1"
}

cleanup() {
	local status=$? root pid
	trap - EXIT INT TERM
	for pid in $CHILD "${MAJOR_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for root in "${ROOTS[@]}"; do
		[ -d "$root" ] || continue
		if [ $status -eq 130 ] || [ $status -eq 143 ]; then
			stop_leftovers "$root" quiet || true
		else
			stop_leftovers "$root" || status=1
		fi
		umount_root "$root"
		if [ -n "$(mounts_under "$root")" ]; then
			echo "majors: $root still has mounts; not removed" >&2
			status=1
		elif [ "${FOREMAN_KEEP:-}" != yes ]; then
			rm -rf --one-file-system "$root"
		fi
	done
	exit $status
}
trap cleanup EXIT
trap 'echo "majors: interrupted" >&2; exit 130' INT
trap 'echo "majors: terminated" >&2; exit 143' TERM

# run LOG CMD...: CMD with its output in LOG, in the background so that a
# signal reaches our traps at once (bash runs a trap only after the foreground
# command ends); stop_leftovers then ends what runs inside the roots.
run() {
	local log=$1 status=0
	shift
	"$@" >>"$log" 2>&1 &
	CHILD=$!
	wait "$CHILD" || status=$?
	CHILD=""
	return $status
}

# in_root ROOT CMD...: CMD inside ROOT with a clean environment.
in_root() {
	local root=$1
	shift
	chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}

# --- suites and roots --------------------------------------------------------

# apt_probe SUITE PACKAGE: does SUITE of the mirror have PACKAGE? A look-up
# with this machine's apt and a private state directory (so nothing of this
# machine's apt changes); whether the suite's Release file is still valid is
# decided in the root (apt_update_root), where it matters.
apt_probe() {
	local suite=$1 pkg=$2 dir=$FOREMAN_CACHE/apt/$1 opts
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	opts=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Sandbox::User=root)
	# The index is fetched again after a day: a major no suite had may come.
	if [ ! -f "$dir/updated" ] || [ -n "$(find "$dir/updated" -mmin +1440)" ]; then
		echo "deb [signed-by=$KEYRING check-valid-until=no] $FOREMAN_MIRROR $suite main" >"$dir/sources.list"
		apt-get "${opts[@]}" -q update >"$dir/update.log" 2>&1 || { cat "$dir/update.log" >&2; return 2; }
		touch "$dir/updated"
	fi
	apt-cache "${opts[@]}" show "$pkg" >/dev/null 2>&1
}

# suite_for_major N: the first suite of FOREMAN_SUITES that ships
# postgresql-server-dev-N.
suite_for_major() {
	local n=$1 suite
	for suite in $FOREMAN_SUITES; do
		if apt_probe "$suite" "postgresql-server-dev-$n"; then
			echo "$suite"
			return 0
		fi
	done
	return 1
}

# The recipe of the roots: a change of any of it makes new tarballs.
recipe_hash() {
	{
		cat scripts/deps.sh
		declare -f prepare_roots apt_sources apt_setup apt_update_root
		echo "$FOREMAN_MIRROR $FOREMAN_SECURITY_MIRROR"
	} | sha256sum | cut -c1-12
}

# apt_sources SUITE [EXPIRED...]: the sources a Debian installation of SUITE
# has (the suite, its -updates and -security; sid has neither): a package
# built against the latest minor release needs it (postgresql:Depends names
# that minor). Suites named in EXPIRED get check-valid-until=no.
apt_sources() {
	local suite=$1 line s uri
	shift
	for line in "$FOREMAN_MIRROR $suite" "$FOREMAN_MIRROR $suite-updates" "$FOREMAN_SECURITY_MIRROR $suite-security"; do
		uri=${line% *}
		s=${line##* }
		[ "$suite" = sid ] && [ "$s" != sid ] && continue
		if [[ " $* " == *" $s "* ]]; then
			echo "deb [check-valid-until=no] $uri $s main"
		else
			echo "deb $uri $s main"
		fi
	done
}

# apt_setup ROOT SUITE: apt and dpkg inside ROOT as a test root wants them.
apt_setup() {
	local root=$1 suite=$2
	apt_sources "$suite" >"$root/etc/apt/sources.list"
	# No recommends; no service started by a package's postinst (there is no
	# init in a chroot); Debian's postgresql-common creates no cluster.
	echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90foreman"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	mkdir -p "$root/etc/postgresql-common"
	echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
}

# apt_update_root ROOT SUITE LOG: apt-get update inside ROOT. Testing and sid
# of an archive snapshot have Release files past their Valid-Until date: then,
# and for those suites only, apt is told to take them (check-valid-until=no).
apt_update_root() {
	local root=$1 suite=$2 log=$3 out=$FOREMAN_WORK/apt-update.$BASHPID expired
	run "$out" in_root "$root" apt-get -q update || true
	cat "$out" >>"$log"
	expired=$(sed -n 's|.*/dists/\([^/]*\)/InRelease is expired.*|\1|p' "$out" | sort -u | tr '\n' ' ')
	if ! grep -q '^E: ' "$out"; then
		rm -f "$out"
		return 0
	fi
	rm -f "$out"
	[ -n "$expired" ] || return 1
	say "suite $suite: Release files past their Valid-Until date ($expired); apt takes them, for those suites only (check-valid-until=no)"
	# shellcheck disable=SC2086
	apt_sources "$suite" $expired >"$root/etc/apt/sources.list"
	run "$log" in_root "$root" apt-get -q update
}

# prepare_roots N SUITE RUNTIME_TAR [BUILD_TAR]: debootstrap, postgresql-N
# (the runtime root), then the build and test dependencies (the build root).
prepare_roots() {
	local n=$1 suite=$2 runtime_tar=$3 build_tar=${4:-} dir script log
	dir=$FOREMAN_WORK/prepare-pg$n
	log=$FOREMAN_WORK/pg$n/prepare.log
	remove "$dir"
	mkdir -p "$dir"
	: >"$log"
	ROOTS+=("$dir")
	# debootstrap knows each suite by a script; a suite newer than this
	# machine's debootstrap (forky on Debian 12) bootstraps as sid does.
	script=/usr/share/debootstrap/scripts/$suite
	[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
	say "pg$n: debootstrap $suite from $FOREMAN_MIRROR (log: $log)"
	run "$log" debootstrap --variant=minbase --keyring="$KEYRING" "$suite" "$dir" "$FOREMAN_MIRROR" "$script" ||
		{ tail -n 20 "$log" | tag "$n" >&2; return 1; }
	apt_setup "$dir" "$suite" && mount_root "$dir" || return 1
	say "pg$n: installing postgresql-$n"
	if ! { apt_update_root "$dir" "$suite" "$log" &&
		run "$log" in_root "$dir" apt-get install -y -q "postgresql-$n" &&
		run "$log" in_root "$dir" apt-get clean; }; then
		tail -n 30 "$log" | tag "$n" >&2
		return 1
	fi
	stop_leftovers "$dir" || return 1
	umount_root "$dir"
	tar -C "$dir" -I 'zstd -q -T0 -3' -cf "$runtime_tar.part" . && mv "$runtime_tar.part" "$runtime_tar" || return 1
	if [ -n "$build_tar" ]; then
		mount_root "$dir" || return 1
		say "pg$n: installing the build and test dependencies (scripts/deps.sh deb)"
		cp scripts/deps.sh "$dir/tmp/deps.sh"
		if ! { run "$log" in_root "$dir" env PG_MAJOR="$n" bash /tmp/deps.sh deb &&
			run "$log" in_root "$dir" apt-get clean; }; then
			tail -n 30 "$log" | tag "$n" >&2
			return 1
		fi
		rm -f "$dir/tmp/deps.sh"
		stop_leftovers "$dir" || return 1
		umount_root "$dir"
		tar -C "$dir" -I 'zstd -q -T0 -3' -cf "$build_tar.part" . && mv "$build_tar.part" "$build_tar" || return 1
	fi
	remove "$dir"
}

# roots_for N [runtime]: sets SUITE, RUNTIME_TAR and BUILD_TAR for major N,
# preparing what the cache does not have (only the runtime root if asked).
roots_for() {
	local status=0
	# One run at a time prepares roots (another run of this machine waits,
	# bounded, then finds them in the cache).
	exec 9>"$FOREMAN_CACHE/roots.lock"
	flock -w 1800 9 || die "another run has held $FOREMAN_CACHE/roots.lock for 30 minutes"
	roots_for_locked "$@" || status=$?
	exec 9>&-
	return $status
}

roots_for_locked() {
	local n=$1 only=${2:-} hash memo=$FOREMAN_CACHE/roots/pg$1.suite
	hash=$(recipe_hash)
	# The suite found last time, while its roots of this recipe are cached;
	# otherwise the suites are looked through again.
	SUITE=$(cat "$memo" 2>/dev/null || true)
	if [ -n "$SUITE" ] && [ -f "$FOREMAN_CACHE/roots/$SUITE-pg$n-runtime-$hash.tar.zst" ] &&
		{ [ "$only" = runtime ] || [ -f "$FOREMAN_CACHE/roots/$SUITE-pg$n-build-$hash.tar.zst" ]; }; then
		RUNTIME_TAR=$FOREMAN_CACHE/roots/$SUITE-pg$n-runtime-$hash.tar.zst
		BUILD_TAR=$FOREMAN_CACHE/roots/$SUITE-pg$n-build-$hash.tar.zst
		say "pg$n: $SUITE roots from the cache ($FOREMAN_CACHE/roots)"
		return 0
	fi
	SUITE=$(suite_for_major "$n") || {
		echo "majors: no suite of '$FOREMAN_SUITES' at $FOREMAN_MIRROR ships postgresql-server-dev-$n" >&2
		return 1
	}
	mkdir -p "$FOREMAN_CACHE/roots"
	echo "$SUITE" >"$memo"
	RUNTIME_TAR=$FOREMAN_CACHE/roots/$SUITE-pg$n-runtime-$hash.tar.zst
	BUILD_TAR=$FOREMAN_CACHE/roots/$SUITE-pg$n-build-$hash.tar.zst
	if [ -f "$RUNTIME_TAR" ] && { [ "$only" = runtime ] || [ -f "$BUILD_TAR" ]; }; then
		say "pg$n: $SUITE roots from the cache ($FOREMAN_CACHE/roots)"
		return 0
	fi
	# Roots of an older recipe of this suite and major are of no more use.
	find "$FOREMAN_CACHE/roots" -maxdepth 1 -name "$SUITE-pg$n-*.tar.zst" ! -name "*-$hash.tar.zst" -delete
	rm -f "$FOREMAN_CACHE/roots"/*.part   # of an interrupted run (we hold the lock)
	if [ "$only" = runtime ]; then
		prepare_roots "$n" "$SUITE" "$RUNTIME_TAR"
	else
		prepare_roots "$n" "$SUITE" "$RUNTIME_TAR" "$BUILD_TAR"
	fi
}

# unpack TAR DIR: a fresh root from a cached tarball.
unpack() {
	remove "$2" && mkdir -p "$2" && ROOTS+=("$2") && tar -C "$2" -I zstd -xf "$1"
}

# --- the package in a fresh root ---------------------------------------------

# package_check N RUNTIME_TAR DEB LOG: install DEB with apt in a fresh runtime
# root, preload, CREATE EXTENSION, a job runs (scripts/package-check.sh).
package_check() {
	local n=$1 tar=$2 deb=$3 log=$4 root
	root=$FOREMAN_WORK/pg$n/runtime-root
	unpack "$tar" "$root" && cp "$deb" scripts/package-check.sh "$root/tmp/" && mount_root "$root" || return 1
	# Packages apt fetches for the package's dependencies (libfmt) are kept
	# between runs, so a second run downloads nothing.
	# One directory per suite and major: apt locks it, and majors run side by
	# side.
	local archives=$FOREMAN_CACHE/archives/$SUITE-pg$n
	mkdir -p "$archives/partial" "$root/var/cache/apt/archives" &&
		mount --bind "$archives" "$root/var/cache/apt/archives" || return 1
	local status=0
	: >"$log"
	run "$log" in_root "$root" bash /tmp/package-check.sh "$n" "/tmp/$(basename "$deb")" || status=$?
	stop_leftovers "$root" || status=1
	umount_root "$root"
	return $status
}

# --- make test-majors ----------------------------------------------------------

elapsed() { local s=$(($(date +%s) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# test_major N: prints its result line into $FOREMAN_WORK/pgN/result.
test_major() {
	local n=$1 dir=$FOREMAN_WORK/pg$1 t0 t_prep t_suites t_deb t_pkg root commit status=0
	remove "$dir"
	mkdir -p "$dir"
	t0=$(date +%s)
	echo "PG $n: FAILED: no Debian root (no suite of '$FOREMAN_SUITES' ships postgresql-server-dev-$n, or debootstrap or apt failed: $dir/prepare.log)" >"$dir/result"
	roots_for "$n" || return 1
	t_prep=$(elapsed "$t0")

	root=$dir/build-root
	unpack "$BUILD_TAR" "$root" || return 1
	# A clone of the commit checked out here: what git tracks, nothing else.
	commit=$(git rev-parse HEAD)
	git init -q "$root/pg_foreman" &&
		git -C "$root/pg_foreman" fetch -q "$PROJECT" "$commit" &&
		git -C "$root/pg_foreman" checkout -q --detach FETCH_HEAD || return 1
	[ "$(git -C "$root/pg_foreman" rev-parse HEAD)" = "$commit" ] || die "the clone is not at $commit"
	mount_root "$root" || return 1

	say "pg$n: make PG_MAJOR=$n test in $SUITE (log: $dir/suites.log)"
	t0=$(date +%s)
	: >"$dir/suites.log"
	run "$dir/suites.log" in_root "$root" bash -c "cd /pg_foreman && make --no-print-directory PG_MAJOR=$n test" || status=$?
	t_suites=$(elapsed "$t0")
	local counts
	counts=$(sed -n 's/^suite counts: //p' "$dir/suites.log" | tail -n 1)
	if [ $status -ne 0 ]; then
		grep -E '^(FAILED|not ok|#   Failed|t/.*(Failed|Dubious))' "$dir/suites.log" | head -n 20 | tag "$n" >&2 || true
		echo "PG $n ($SUITE): FAILED in make test: ${counts:-no counts} (log: $dir/suites.log)" >"$dir/result"
		stop_leftovers "$root" || true
		umount_root "$root"
		return 1
	fi

	say "pg$n: make PG_MAJOR=$n deb (log: $dir/deb.log)"
	t0=$(date +%s)
	: >"$dir/deb.log"
	run "$dir/deb.log" in_root "$root" bash -c "cd /pg_foreman && make --no-print-directory PG_MAJOR=$n deb" || status=$?
	t_deb=$(elapsed "$t0")
	stop_leftovers "$root" || status=1
	umount_root "$root"
	local deb
	deb=$(ls "$root"/pg_foreman/build/deb/postgresql-"$n"-foreman_*.deb 2>/dev/null | head -n 1)
	if [ $status -ne 0 ] || [ -z "$deb" ]; then
		tail -n 20 "$dir/deb.log" | tag "$n" >&2
		echo "PG $n ($SUITE): suites passed ($counts); FAILED in make deb (log: $dir/deb.log)" >"$dir/result"
		return 1
	fi
	cp "$deb" "$dir/" || return 1
	deb=$dir/$(basename "$deb")
	remove "$root"

	say "pg$n: $(basename "$deb") in a fresh $SUITE root (log: $dir/package.log)"
	t0=$(date +%s)
	package_check "$n" "$RUNTIME_TAR" "$deb" "$dir/package.log" || status=$?
	t_pkg=$(elapsed "$t0")
	if [ $status -ne 0 ]; then
		tail -n 20 "$dir/package.log" | tag "$n" >&2
		echo "PG $n ($SUITE): suites passed ($counts); FAILED in the package check (log: $dir/package.log)" >"$dir/result"
		return 1
	fi
	local version
	version=$(sed -n 's/^package check: server //p' "$dir/package.log")
	echo "PG $n ($SUITE, $version): $counts; package $(basename "$deb"): installed, CREATE EXTENSION, a job ran; roots $t_prep, suites $t_suites, deb $t_deb, package $t_pkg" >"$dir/result"
}

# test_major_bg N: test_major N in a subshell of its own, in the background
# (its pid joins MAJOR_PIDS). A subshell does not inherit traps: it sets its
# own, so it unmounts and removes its roots however it ends, and the EXIT trap
# of this script ends it (TERM) and waits for it.
test_major_bg() {
	(
		ROOTS=() CHILD="" MAJOR_PIDS=()
		trap cleanup EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
		test_major "$1" || exit
	) &
	MAJOR_PIDS+=($!)
}

cmd_test() {
	local majors=("$@") n failed=0 t0
	[ ${#majors[@]} -gt 0 ] || read -r -a majors <<<"$PG_MAJORS"
	for n in "${majors[@]}"; do
		[[ $n =~ ^[0-9]+$ ]] || die "not a PostgreSQL major: '$n' (PG_MAJORS=\"17 18\")"
	done
	[ "$(printf '%s\n' "${majors[@]}" | sort -u | wc -l)" -eq ${#majors[@]} ] ||
		die "a major is named twice: ${majors[*]}"
	if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
		say "the work tree has uncommitted changes: they are not tested (a clone of HEAD $(git rev-parse --short HEAD) is)"
	fi
	mkdir -p "$FOREMAN_WORK"
	t0=$(date +%s)
	# FOREMAN_JOBS majors at a time (default: all of them). A major's suites
	# wait most of their time on background workers, so two side by side take
	# little longer than one: on a 2-core machine, 17 and 18 took 16m43s
	# together (roots made from an empty cache included; suites 11m33s and
	# 11m48s) where one after the other took 28m55s. Each root has its own
	# /tmp, so its clusters' unix sockets, its pg_regress port and its TAP
	# port reservations are its own; the one TCP listener of the suites (the
	# exporter of TAP 072, on 127.0.0.1) takes a port it has just found free.
	local jobs=${FOREMAN_JOBS:-${#majors[@]}} i j
	[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "FOREMAN_JOBS must be a positive number, not '$jobs'"
	for ((i = 0; i < ${#majors[@]}; i += jobs)); do
		MAJOR_PIDS=()
		for n in "${majors[@]:i:jobs}"; do
			test_major_bg "$n"
		done
		for j in "${!MAJOR_PIDS[@]}"; do
			wait "${MAJOR_PIDS[$j]}" || failed=1
		done
		MAJOR_PIDS=()
	done
	echo
	echo "=== make test-majors ($(elapsed "$t0")) ==="
	for n in "${majors[@]}"; do cat "$FOREMAN_WORK/pg$n/result"; done
	local passed=0
	for n in "${majors[@]}"; do grep -q FAILED "$FOREMAN_WORK/pg$n/result" || passed=$((passed + 1)); done
	echo "majors: $passed passed, $((${#majors[@]} - passed)) failed"
	[ $failed -eq 0 ] || { echo "make test-majors: FAILED"; return 1; }
	echo "make test-majors: all majors passed: ${majors[*]}"
}

# --- make deb-check ----------------------------------------------------------

cmd_check_deb() {
	local deb=${1:-} n
	n=${PG_MAJOR:-15}
	[ -n "$deb" ] || deb=$(ls build/deb/postgresql-"$n"-foreman_*.deb 2>/dev/null | head -n 1)
	[ -f "$deb" ] || die "no package: run make deb first (or give its path)"
	n=$(dpkg-deb --field "$deb" Package | sed -n 's/^postgresql-\([0-9]*\)-foreman$/\1/p')
	[ -n "$n" ] || die "$deb is not a postgresql-N-foreman package"
	mkdir -p "$FOREMAN_WORK/pg$n"
	roots_for "$n" runtime
	local log=$FOREMAN_WORK/pg$n/package.log
	say "pg$n: $(basename "$deb") in a fresh $SUITE root (log: $log)"
	if ! package_check "$n" "$RUNTIME_TAR" "$deb" "$log"; then
		tail -n 30 "$log" >&2
		die "package check FAILED"
	fi
	grep '^package check' "$log"
}

mkdir -p "$FOREMAN_WORK" "$FOREMAN_CACHE"
case "${1:-}" in
	test) shift; cmd_test "$@" ;;
	check-deb) shift; cmd_check_deb "$@" ;;
	*) echo "usage: $0 test [N...] | check-deb [DEB]" >&2; exit 2 ;;
esac
