# Top-level wrapper: the README's two commands.
#   make run   - install what is needed, build, start scepd on embedded defaults
#   make test  - install what is needed, build, run every test, then the unit,
#                HTTP, interop and hostile tests again under ASan+UBSan, then
#                every fuzz target for 20 s
BUILD ?= build
DATA ?= $(CURDIR)/data
LISTEN ?= 127.0.0.1:8080
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-only asan fuzz clean format format-check

all: build

deps:
	@scripts/deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: deps build
	$(BUILD)/scepd serve --data $(DATA) --listen $(LISTEN)

test: deps
	@if [ -n "$${CI:-}" ]; then $(MAKE) format-check; fi
	$(MAKE) build CMAKE_FLAGS="$(CMAKE_FLAGS) -DSCEPD_WERROR=$${CI:+ON}"
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) asan
	$(MAKE) fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-20}

test-only:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DSCEPD_SANITIZE=ON -DSCEPD_WERROR=ON >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -L 'unit|http|interop|hostile'

# Every libFuzzer target for FUZZ_SECONDS (default 20) on its seed corpus.
fuzz: deps
	tests/fuzz/run.sh $(CURDIR)/$(BUILD)-fuzz $${FUZZ_SECONDS:-20}

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# CI fails on unformatted C (STYLE.md habit 16).
format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	@echo "format-check: ok"

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
