# workers/cpu — loom-worker-cpu: the CPU backend (tools, and the LLM engine's
# ops on its CPU backend, llm/) over workers/common. compute and
# vector.search (op_kernel.c) run JIT-compiled kernels: MLIR is linked in.
WORKER_CPU_SRCS := $(wildcard workers/cpu/*.c)
$(eval $(call PROG,loom-worker-cpu,$(WORKER_CPU_SRCS),$(BUILD)/lib/libloom_llm.a $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a,$(LLM_LDLIBS) $(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(MLIR_LDLIBS) $(COMMON_LDLIBS) -lm))
