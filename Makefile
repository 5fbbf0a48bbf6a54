# taskq: `make demo` runs the tutorial, `make test` runs every test.
# Both install missing Debian packages (scripts/install-deps), configure and build first.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build test demo clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 180 -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
