# shimmy — `make` builds build/shimmy and libshimmy.a; `make serve` and `make test` are the two
# commands a newcomer runs. Every target installs missing Debian packages first (as root).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
SERVE_ARGS ?=
PREFIX ?= /usr/local

.PHONY: all deps deps-test configure build test serve install bench fuzz format format-check clean

all: build

deps:
	@bash scripts/deps.sh

deps-test:
	@bash scripts/deps.sh --test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit tests (plain and ASan+UBSan), end-to-end tests of the binary and the server.
test: deps-test configure
	cmake --build $(BUILD) -j $(JOBS)
	bash scripts/test-setup.sh
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

# Only what serving needs: the binary and the libraries it links (no tests, no sanitizer copies).
serve: configure
	cmake --build $(BUILD) -j $(JOBS) --target shimmy
	./$(BUILD)/shimmy serve $(SERVE_ARGS)

# The binary, libshimmy (.so/.a), shimmy.h, shimmy.pc, shimmy(1), completions, the systemd unit.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@echo "benchmarks: $(BUILD)/bench_* (see bench/README.md)"

# Every tests/fuzz/fuzz_<name>.c under libFuzzer (clang, ASan+UBSan) for FUZZ_SECONDS each; new
# inputs go to fuzz-out/<name>/ (seeds stay in tests/fuzz/corpus/<name>/). docs/fuzz.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: deps
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
		-DSHIMMY_FUZZ=ON -DSHIMMY_SANITIZE=OFF
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz-out/$$t; \
		dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
		echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
		./$(BUILD)-fuzz/fuzz_$$t $$dict -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
			-rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
			-artifact_prefix=fuzz-out/ fuzz-out/$$t tests/fuzz/corpus/$$t; \
	done

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
