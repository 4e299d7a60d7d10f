# shimmy — `make` builds build/shimmy and libshimmy.a; `make serve` and `make test` are the two
# commands a newcomer runs. Every target installs missing Debian packages first (as root).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
SERVE_ARGS ?=

.PHONY: all deps deps-test configure build test serve bench fuzz format format-check clean

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

serve: build
	./$(BUILD)/shimmy serve $(SERVE_ARGS)

bench: build
	@echo "benchmarks: $(BUILD)/bench_* (see bench/README.md)"

fuzz: deps
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DSHIMMY_FUZZ=ON -DSHIMMY_SANITIZE=OFF
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_gguf
	mkdir -p fuzz-out/gguf
	./$(BUILD)-fuzz/fuzz_gguf fuzz-out/gguf tests/fuzz/corpus/gguf -max_total_time=$${FUZZ_SECONDS:-60}

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
