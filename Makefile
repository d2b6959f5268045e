# fleetgw: thin wrapper around CMake. Build dir build/, host programs in build/bin/,
# firmware in build/firmware/. See README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= 2
WERROR     ?= OFF
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
CTEST      := ctest --output-on-failure -j$(JOBS)

.PHONY: all deps configure build check test asan bench demo deb fuzz format lint clean

all: build

deps:
	@scripts/deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFLEETGW_WERROR=$(WERROR)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && $(CTEST) -LE bench

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFLEETGW_WERROR=$(WERROR) \
	    -DFLEETGW_SANITIZE=ON -DFLEETGW_FIRMWARE=OFF
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(CTEST) -L 'unit|fuzz'

# Everything: dependencies, build (firmware included), all tests but benchmarks, then the
# ASan+UBSan build running the unit and fuzz tests.
check: test asan

bench: build
	cd $(BUILD) && ctest --output-on-failure -L bench -V

# The build's own output goes to a log file, so the story is not interleaved with it.
demo:
	@mkdir -p $(BUILD)
	@echo "demo: building (output in $(BUILD)/demo-build.log)"
	@$(MAKE) --no-print-directory build >$(BUILD)/demo-build.log 2>&1 || \
	    { tail -n 20 $(BUILD)/demo-build.log; \
	      echo "demo: the build failed; the whole log: $(BUILD)/demo-build.log" >&2; exit 1; }
	@scripts/demo.sh $(BUILD)

deb: deps
	scripts/make-deb.sh

# Runs every libFuzzer target for FUZZ_SECONDS each (clang, ASan+UBSan), growing the corpus
# in a scratch copy; crashes land in $(FUZZ_BUILD)/artifacts/.
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFLEETGW_WERROR=$(WERROR) -DFLEETGW_LIBFUZZER=ON \
	    -DFLEETGW_HOST_ONLY=ON -DFLEETGW_FIRMWARE=OFF
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	git ls-files -z '*.c' '*.h' | xargs -0 -r clang-format -i

lint: configure
	git ls-files -z '*.c' '*.h' | xargs -0 -r clang-format --dry-run -Werror
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    --suppress=missingIncludeSystem --std=c11 -I proto/include -I tpm/include \
	    -I daemon/include -I agents/core/include $$(git ls-files '*.c' | grep -v '^tests/fuzz/')
	git ls-files '*.c' | grep -E '^(proto|tpm|daemon)/' | \
	    xargs -r clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
