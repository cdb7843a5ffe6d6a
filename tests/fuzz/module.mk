# tests/fuzz — libFuzzer targets. They are built only in the fuzz build
# (BUILD=build-fuzz, clang-19, -fsanitize=fuzzer-no-link,address,undefined);
# see tests/fuzz/README.md for how to add one.
#
#   make fuzz                 every fuzzer for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_SECONDS=5  shorter
#   fuzz_smoke (in make test) ~5 s each over the seed corpus
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_CC := clang-19
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined
FUZZ_MAKE = $(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) SAN="$(FUZZ_SAN)" OPT="-O1 -g"

$(eval $(call FUZZ,fuzz_envelope,tests/fuzz/fuzz_envelope.c,$(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a,$(PROTOCOL_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call FUZZ,fuzz_workflow,tests/fuzz/fuzz_workflow.c,$(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_common.a,$(PLANNER_LDLIBS) $(COMMON_LDLIBS)))

# Builds every fuzzer (run in the fuzz build: use `make fuzz` or the smoke
# test). FUZZERS is expanded in the recipe, after every module.mk was read,
# so fuzzers declared in any module.mk are included.
.PHONY: fuzz-build
fuzz-build:
	$(if $(strip $(FUZZERS)),@$(MAKE) --no-print-directory $(FUZZERS),@echo "no fuzzers declared")

# Runs each fuzzer on a scratch copy of its corpus so that new inputs do
# not pile up in the committed seeds; crashes land in $(FUZZ_BUILD)/crashes/.
fuzz: check-deps
	@$(FUZZ_MAKE) fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD=$(FUZZ_BUILD) ./tests/fuzz/run-fuzzers.sh

fuzz-smoke:
	@BUILD=$(BUILD) ./tests/fuzz/smoke.sh

$(eval $(call SCRIPT_TEST,fuzz_smoke,tests/fuzz/smoke.sh))
# The fuzz build is made with the other test programs, before any test runs:
# from scratch it takes minutes on a loaded 2-core machine, which does not
# belong inside fuzz_smoke's time limit (smoke.sh then finds it up to date).
# Not under make asan (LOOM_SKIP_FUZZ=1) or without clang-19.
.PHONY: fuzz-build-for-tests
fuzz-build-for-tests:
	$(if $(filter 1,$(LOOM_SKIP_FUZZ)),@true,@if command -v $(FUZZ_CC) >/dev/null; then \
	  mkdir -p $(BUILD) && $(FUZZ_MAKE) fuzz-build >$(BUILD)/fuzz-build.log 2>&1 || \
	  { echo "fuzz build failed (see $(BUILD)/fuzz-build.log):"; tail -n 30 $(BUILD)/fuzz-build.log; exit 1; }; fi)
$(BUILD)/tests/fuzz_smoke: fuzz-build-for-tests
