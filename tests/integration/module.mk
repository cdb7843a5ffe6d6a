# tests/integration — real loomd + loom-worker-cpu processes on free loopback
# ports (tests/integration/lib.sh), driven through the loom CLI.
INTEG_TESTS := $(sort $(wildcard tests/integration/test_*.sh))
$(foreach t,$(INTEG_TESTS),$(eval $(call SCRIPT_TEST,integ_$(patsubst test_%.sh,%,$(notdir $(t))),$(t))))
# test_hostile.sh speaks the wire protocol from Python (generated modules).
$(BUILD)/tests/integ_hostile: $(PROTO_PY)
