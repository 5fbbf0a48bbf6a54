# taskq: `make demo` runs the tutorial, `make test` runs every test.
# Both install missing Debian packages (scripts/install-deps), configure and build first.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
N ?= 20

.PHONY: all deps build test test-cluster test-repeat test-faults demo fuzz bench bench-quick bench-build clean
.PHONY: configure install test-install deb

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@scripts/install-deps test
	@cd $(BUILD) && ctest --output-on-failure --timeout 180 -j $(JOBS) -LE '^nats_'

# The NATS JetStream store's tests (issue 18): real nats-server clusters of
# one and three servers on 127.0.0.1, started by the tests (tests/nats_cluster.h).
# Kept out of make test for its time (about 40 s of clusters starting); .ci/run
# runs it too.
test-cluster: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 180 -j $(JOBS) -L '^nats_'

# The end-to-end tests N times each (a test stops at its first failure), to
# find one that passes only on an idle machine. LOAD=1 keeps every core busy
# with stress-ng meanwhile. Before a change that touches timing:
#   make test-repeat N=50 LOAD=1
test-repeat: build
	@$(if $(filter 1,$(LOAD)),scripts/install-deps load)
	@scripts/test-repeat $(BUILD) $(N) $(JOBS) $(if $(filter 1,$(LOAD)),load)

# The kill-and-resume runs of task_master's job (tests/e2e_job_test.cc),
# longer: more tasks, more kills, in every --fsync mode. .ci/run runs it too.
FAULT_ROUNDS ?= 10
test-faults: build
	@cd $(BUILD) && TASKQ_FAULT_ROUNDS=$(FAULT_ROUNDS) ctest -L e2e_job_test -R Kill \
	  --output-on-failure --timeout 600 -j $(JOBS)

# The programs (the demo runs two; taskq is there to look at it): the tests wait for make test.
demo: configure
	@cmake --build $(BUILD) -j $(JOBS) --target task_master task_worker taskq
	@scripts/demo $(BUILD)

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }

# make install [PREFIX=/opt/taskq] [DESTDIR=/tmp/stage]: the programs, the
# client library, headers, CMake and pkg-config files, man pages, systemd
# units (packaging/CMakeLists.txt). Builds what it installs, not the tests.
PREFIX ?= /usr/local
install: configure
	@cmake --build $(BUILD) -j $(JOBS) --target taskq_installable
	@cmake --install $(BUILD) --prefix $(PREFIX)

# Debian packages taskq and libtaskq-dev from the same install rules (CPack),
# into $(BUILD)/packages.
deb: configure
	@scripts/install-deps package
	@cmake --build $(BUILD) -j $(JOBS) --target taskq_installable
	@cd $(BUILD) && cpack -G DEB -B packages > packages.log 2>&1 || { cat packages.log; exit 1; }
	@ls $(BUILD)/packages/*.deb

# Installs into a temporary prefix and builds programs of one's own against
# it (CMake and pkg-config), runs them, builds the .deb and runs it from a
# scratch root. .ci/run runs it too.
test-install: configure
	@scripts/install-deps package
	@cmake --build $(BUILD) -j $(JOBS) --target taskq_installable
	@scripts/test-install $(BUILD)

# libFuzzer (clang, ASan, UBSan) on the message decoder and the master's state
# machine, FUZZ_SECONDS per target; findings go to build-fuzz/findings.
fuzz:
	@scripts/install-deps fuzz
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DTASKQ_FUZZ=ON -DTASKQ_BUILD_TESTS=OFF \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo > build-fuzz.configure.log 2>&1 \
	  || { cat build-fuzz.configure.log; exit 1; }
	@cmake --build build-fuzz -j $(JOBS)
	@scripts/fuzz build-fuzz $(FUZZ_SECONDS)

# Performance, side by side with the BaseManager tutorial and raw ZeroMQ
# (bench/run_bench.py), then the micro-benchmarks; a Release build of its own.
# bench-quick: the same, small, in under a minute.
bench-build:
	@scripts/install-deps bench
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTASKQ_BENCH=ON \
	  -DTASKQ_BUILD_TESTS=OFF > build-release.configure.log 2>&1 \
	  || { cat build-release.configure.log; exit 1; }
	@cmake --build build-release -j $(JOBS)

bench: bench-build
	@python3 bench/run_bench.py build-release
	@build-release/bench/micro_bench --benchmark_min_time=0.5

bench-quick: bench-build
	@python3 bench/run_bench.py build-release --quick

clean:
	rm -rf $(BUILD) $(BUILD).configure.log build-fuzz build-fuzz.configure.log \
	  build-release build-release.configure.log
