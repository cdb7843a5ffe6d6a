# bench/ — benchmarks; each adds a phony bench-<name> target to BENCHES.

# bench-dispatch: loomd + 2 CPU workers vs Dask distributed (bench/dispatch.sh).
$(eval $(call PROG,bench-dispatch,bench/dispatch.c,$(BUILD)/lib/libloom_client.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a,$(PROTOCOL_LDLIBS) $(COMMON_LDLIBS)))
.PHONY: bench-dispatch
bench-dispatch: $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom $(BUILD)/bin/bench-dispatch
	BUILD=$(BUILD) ./bench/dispatch.sh
BENCHES += bench-dispatch
