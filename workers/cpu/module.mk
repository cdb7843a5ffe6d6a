# workers/cpu — loom-worker-cpu: the CPU backend (tools, and the LLM engine
# when its llm_*.c files are present) over workers/common. compute and
# vector.search (op_kernel.c) run JIT-compiled kernels: MLIR is linked in.
WORKER_CPU_SRCS := $(wildcard workers/cpu/*.c)
$(eval $(call PROG,loom-worker-cpu,$(WORKER_CPU_SRCS),$(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a,$(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(MLIR_LDLIBS) $(COMMON_LDLIBS) -lm))

# --- LLM (llm engineer): libloom_llm.a (model loading, CPU forward,
# sampling, generation loop shared with the GPU backend). `loom llm` in
# cli/cmd_llm.c runs it from the command line.
LLM_SRCS := $(wildcard workers/cpu/llm_*.c)
$(eval $(call LIB,llm,$(LLM_SRCS)))
LLM_ARCHIVES := $(BUILD)/lib/libloom_llm.a $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_common.a
LLM_LDLIBS := -lm -ljansson $(COMMON_LDLIBS)
CLI_ARCHIVES += $(BUILD)/lib/libloom_llm.a $(BUILD)/lib/libloom_worker.a
CLI_LDLIBS += -lm -ljansson -lcurl
