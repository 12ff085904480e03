# pg_foreman: PGXS build of the extension, plus the project's own targets.
#
#   make demo    install what is missing, build, install, run the demo cluster
#   make test    install what is missing, build, run unit tests, pg_regress and TAP
#   make bench   benchmarks (not part of make test): every target of issue 15 in one table
#   make bench-pictures  copy the latest full run's SVGs into test/bench/ (to commit them)
#   make test-ha pg_foreman under Patroni with etcd: failover, switchover, partition
#   make deb     the Debian package postgresql-$(PG_MAJOR)-foreman, into build/deb/
#   make deb-check     that package in a fresh Debian root: installs, CREATE EXTENSION, a job runs
#   make test-majors   every suite, make deb and the package check on PG_MAJORS ("17 18"),
#                each in a Debian root of the suite that ships it (cached in FOREMAN_CACHE)
#
# pg_config and the PGXS headers may be absent on a fresh machine: the targets
# above first run scripts/deps.sh (apt-get, as root) and then re-enter make, so
# this file must parse without them.

PG_MAJOR   ?= 15
PG_CONFIG  ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
export PG_MAJOR PG_CONFIG
HAVE_PGXS  := $(shell test -x $(PG_CONFIG) && test -f "$$($(PG_CONFIG) --pgxs 2>/dev/null)" && echo yes)

MODULE_big = pg_foreman
MODULEDIR  = extension
DATA       = control/pg_foreman.control $(wildcard control/pg_foreman--*.sql)
SRCS       = $(sort $(wildcard src/*.cpp src/core/*.cpp src/pg/*.cpp src/bgw/*.cpp src/api/*.cpp))
OBJS       = $(SRCS:.cpp=.o)
FOREMAN_HEADERS = $(wildcard src/*/*.hpp src/*.hpp)

# pg_regress suites, in order; each file in sql/ has its expected/ twin.
REGRESS      = boundary tiers jobs execution errors schedules cron_checks security maintenance multitenant pipelines observe majors
REGRESS_OPTS = --inputdir=. --load-extension=pg_foreman

ifeq ($(HAVE_PGXS),yes)
PG_INCLUDE_SERVER := $(shell $(PG_CONFIG) --includedir-server)
# PostgreSQL's headers are system headers for us: our own files are held to
# -Wall -Wextra -Werror, theirs are not ours to fix.
PG_CPPFLAGS = -Isrc -isystem $(PG_INCLUDE_SERVER)
PG_CXXFLAGS = -std=c++20 -Wall -Wextra -Werror -Wno-missing-field-initializers
SHLIB_LINK  = -lfmt -lstdc++
# No LLVM bitcode: the JIT inlines expressions, never scheduler code. Set
# before the include, which decides the targets.
override with_llvm = no
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
$(OBJS): $(FOREMAN_HEADERS)
endif

# ---------------------------------------------------------------------------
# Project targets. They run PostgreSQL as an unprivileged user (PostgreSQL
# refuses root) and create, start and stop every cluster they use.

TEST_USER ?= pgforeman
TEST_ROOT ?= /tmp/pg_foreman-test
BUILD_DIR ?= build

PG_MAJORS     ?= 17 18
FOREMAN_CACHE ?= /var/cache/pg_foreman
export PG_MAJORS FOREMAN_CACHE

.PHONY: deps demo test unit regress tap bench bench-pictures build-install check-pgxs fuzz deb deb-check test-majors test-ha

deps:
	@bash scripts/deps.sh

check-pgxs:
	@test "$(HAVE_PGXS)" = yes || { echo "pg_config/PGXS for PostgreSQL $(PG_MAJOR) not found: run 'make deps'"; exit 1; }

build-install: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory install

# The demo installs what is missing and builds quietly itself (full log in build/demo/).
demo:
	@bash scripts/demo.sh

test: build-install
	@bash scripts/deps.sh test
	@bash scripts/test.sh all

unit: deps
	@bash scripts/test.sh unit

regress: build-install
	@bash scripts/test.sh regress

tap: build-install
	@bash scripts/deps.sh test
	@bash scripts/test.sh tap

# Patroni, etcd and network namespaces: root (servers run as TEST_USER).
test-ha: build-install
	@bash scripts/deps.sh ha
	@bash scripts/test-ha.sh

# BENCH_* settings: see test/bench/run.sh (BENCH_DIR, BENCH_PORT, quick tries).
bench: build-install
	@bash scripts/deps.sh bench
	@bash test/bench/run.sh

bench-pictures:
	@bash test/bench/run.sh --copy-pictures

fuzz: deps
	@bash scripts/deps.sh fuzz
	@bash scripts/fuzz.sh

deb: deps
	@bash scripts/deps.sh deb
	@bash scripts/deb.sh

deb-check: deb
	@bash scripts/deps.sh majors
	@bash scripts/majors.sh check-deb

test-majors:
	@bash scripts/deps.sh majors
	@bash scripts/majors.sh test

clean-project:
	rm -rf $(BUILD_DIR) results regression.diffs regression.out tmp_check

print-regress:
	@echo $(REGRESS)
