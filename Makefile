# Gatehouse: every entry point a developer or CI needs.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
CMAKE_FLAGS ?=

.PHONY: all deps build unit asan fuzz e2e e2e-asan bench-smoke test run bench format format-check clean

all: build

deps:
	@./scripts/install-deps

build/build.ninja build/Makefile:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps build/Makefile
	cmake --build build -j $(JOBS)

unit: build
	cd build && ctest --output-on-failure -j $(JOBS)

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGATEHOUSE_SANITIZE=ON -DGATEHOUSE_MICROBENCH=OFF
	cmake --build build-asan -j $(JOBS) --target unit_tests gatehouse
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./unit_tests --gtest_brief=1

# The black-box suite against the sanitized gateway: a memory error aborts it
# and a leak makes it exit non-zero, which the suite's teardown reports.
e2e-asan: asan build
	GATEHOUSE_BIN=$(CURDIR)/build-asan/gatehouse ASAN_OPTIONS=detect_leaks=1 \
	  $(PYTHON) -m pytest tests/e2e -q -p no:cacheprovider -m "not slow"

# libFuzzer on the HTTP/1 request parser for a bounded time (FUZZ_SECONDS).
FUZZ_SECONDS ?= 60
fuzz: deps
	./tests/fuzz/run $(FUZZ_SECONDS)

e2e: build
	$(PYTHON) -m pytest tests/e2e -q -p no:cacheprovider

bench-smoke: build
	./bench/run --smoke

test: format-check build unit asan fuzz e2e e2e-asan bench-smoke

# Only what the demo needs, so the first `make run` is quick.
run: deps build/Makefile
	cmake --build build -j $(JOBS) --target gatehouse demo-backend
	./scripts/run-quickstart

bench: build
	./bench/run

format: deps
	find src tests tools bench \( -name '*.cc' -o -name '*.h' \) -print0 | xargs -0 clang-format -i

format-check: deps
	find src tests tools bench \( -name '*.cc' -o -name '*.h' \) -print0 | xargs -0 clang-format --dry-run --Werror

clean:
	rm -rf build build-asan build-fuzz
