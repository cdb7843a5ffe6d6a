# cli/ — the `loom` command. Modules append their archives and system
# libraries to CLI_ARCHIVES / CLI_LDLIBS; this file is included after them.
CLI_SRCS := $(wildcard cli/*.c)
$(eval $(call PROG,loom,$(CLI_SRCS),$(CLI_ARCHIVES) $(BUILD)/lib/libloom_common.a,$(CLI_LDLIBS) $(COMMON_LDLIBS)))
