# Loom — one non-recursive Makefile. Each folder adds its targets in a
# module.mk using the templates below (LIB, PROG, TEST); nothing recurses.
#
#   make            build libraries, daemons, CLI
#   make test       install missing deps, build, run every test
#   make demo       run the example workflow end to end
#   make bench      run the benchmarks (prints figures and ratios)
#   make soak       long churn runs: worker and loomd kill -9s, leader failover (prints figures)
#   make soak-llm   the examples on generated models, 20 runs each (RUNS=N)
#   make asan       tests under AddressSanitizer + UBSan (separate build dir)
#   make fuzz       libFuzzer targets, longer runs (clang-19)
#   make deps       install the Debian packages (deploy/install-deps.sh)
#   make install    PREFIX=/usr/local DESTDIR= (see deploy/README.md)
#   make check-fresh  make demo + make test in a fresh Debian 12 chroot (root, slow)

BUILD   ?= build
CC      := $(if $(filter default,$(origin CC)),gcc,$(CC))
OPT     ?= -O2 -g
SAN     ?=
LLVM_CONFIG ?= llvm-config-19

WARN    := -Wall -Wextra -Werror
CFLAGS_BASE := -std=c17 $(WARN) $(OPT) $(SAN) -MMD -MP -D_GNU_SOURCE \
               -I. -I$(BUILD)/gen -fno-strict-aliasing
LDFLAGS_BASE := $(SAN) -pthread
# Generated code (protobuf-c) is not ours: compile it without -Werror.
CFLAGS_GEN := -std=c17 -w $(OPT) $(SAN) -MMD -MP -I. -I$(BUILD)/gen

# Accumulated by module.mk files.
LIBS  :=
BINS  :=
TESTS :=
BENCHES :=   # phony targets, e.g. bench-dispatch
GEN_HDRS :=
FUZZERS :=

# ---- templates ------------------------------------------------------------
objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# Archives passed to PROG/TEST are linked inside one --start-group, so their
# order does not matter. Each module also sets <NAME>_LDLIBS for its system
# libraries and appends to CLI_ARCHIVES / CLI_LDLIBS if the `loom` CLI uses it.

# $(call LIB,name,sources) -> $(BUILD)/lib/libloom_<name>.a
define LIB
$(BUILD)/lib/libloom_$(1).a: $(call objs,$(2))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcs $$@ $$^
LIBS += $(BUILD)/lib/libloom_$(1).a
endef

# $(call PROG,name,sources,archives,ldlibs) -> $(BUILD)/bin/<name>
define PROG
$(BUILD)/bin/$(1): $(call objs,$(2)) $(3)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_BASE) -o $$@ $(call objs,$(2)) -Wl,--start-group $(3) -Wl,--end-group $(4) $$(LDFLAGS)
BINS += $(BUILD)/bin/$(1)
endef

# $(call TEST,name,sources,archives,ldlibs) -> $(BUILD)/tests/<name>
# A test is an executable: exit 0 = pass, 77 = skipped (with a message), else fail.
define TEST
$(BUILD)/tests/$(1): $(call objs,$(2)) $(3)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_BASE) -o $$@ $(call objs,$(2)) -Wl,--start-group $(3) -Wl,--end-group $(4) $$(LDFLAGS)
TESTS += $(BUILD)/tests/$(1)
endef

# $(call SCRIPT_TEST,name,script) -> a shell test run by the same runner.
define SCRIPT_TEST
$(BUILD)/tests/$(1): $(2)
	@mkdir -p $$(@D)
	ln -sf $$(abspath $(2)) $$@
TESTS += $(BUILD)/tests/$(1)
endef

# $(call FUZZ,name,sources,archives,ldlibs) -> $(BUILD)/fuzz/<name>: a
# libFuzzer target. Only meaningful in the fuzz build (CC=clang-19 with
# SAN=-fsanitize=fuzzer-no-link,address,undefined); see tests/fuzz/.
define FUZZ
$(BUILD)/fuzz/$(1): $(call objs,$(2)) $(3)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_BASE) -fsanitize=fuzzer -o $$@ $(call objs,$(2)) -Wl,--start-group $(3) -Wl,--end-group $(4)
FUZZERS += $(BUILD)/fuzz/$(1)
endef

# ---- packages first ----------------------------------------------------------
# Module files evaluate installed files while make reads them ($(wildcard) of
# the MLIR archives, pkg-config, llvm-config). On a fresh machine those would
# expand to nothing before install-deps.sh ran, so install missing packages
# here, before any module is read, for every goal that builds (not for clean,
# deps or help). Exported so sub-makes skip the check; the check itself is
# one dpkg query when everything is present.
NO_DEPS_GOALS := clean deps help check-fresh uninstall
ifneq ($(LOOM_DEPS_CHECKED),1)
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
LOOM_DEPS_LOG := $(shell ./deploy/install-deps.sh 1>&2)
ifneq ($(.SHELLSTATUS),0)
$(error deploy/install-deps.sh failed (status $(.SHELLSTATUS)); run 'make deps' to see why)
endif
endif
endif
export LOOM_DEPS_CHECKED := 1

.DEFAULT_GOAL := all
# Libraries and daemons first, then the CLI (links them all), then tests and
# benchmarks (which may use any variable the modules above defined).
include $(filter-out tests/% bench/% cli/%,$(sort $(wildcard */module.mk */*/module.mk)))
include $(wildcard cli/module.mk)
include $(sort $(wildcard tests/*/module.mk bench/module.mk))

# ---- rules -----------------------------------------------------------------
# Every object may include generated headers: build them first. (These rules
# come after the includes so that $(GEN_HDRS) is complete when expanded; a
# recipe-less pattern rule would not add the prerequisite.)
$(BUILD)/obj/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(CFLAGS_$(subst /,_,$(dir $<))) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_GEN) -c -o $@ $<

.PHONY: all test demo bench asan fuzz fuzz-smoke clean deps check-deps
all: $(LIBS) $(BINS)

deps:
	./deploy/install-deps.sh

# Kept for scripts that name it: the packages were checked while make read
# its makefiles (see "packages first" above).
check-deps:

test: check-deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@BUILD=$(BUILD) ./tests/run-tests.sh $(TESTS)

asan: check-deps
	@$(MAKE) --no-print-directory BUILD=build-asan CC=gcc OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LOOM_SKIP_FUZZ=1 test

# Each module adds a phony bench-<name> target to BENCHES.
bench: check-deps all $(BENCHES)

clean:
	rm -rf build build-asan build-fuzz var

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

demo: check-deps all
	@./deploy/demo.sh

# Not in `make test`/CI: debootstraps Debian 12 and runs `make demo` and
# `make test` there, one invocation each (deploy/check-fresh.sh).
.PHONY: check-fresh
check-fresh:
	./deploy/check-fresh.sh

.PHONY: help
help:
	@sed -n '3,/^$$/s/^# \{0,1\}//p' Makefile
