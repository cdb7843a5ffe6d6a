# workers/cpu — loom-worker-cpu: the CPU backend (tools, and the LLM engine
# when its llm_*.c files are present) over workers/common.
WORKER_CPU_SRCS := $(wildcard workers/cpu/*.c)
$(eval $(call PROG,loom-worker-cpu,$(WORKER_CPU_SRCS),$(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a,$(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(COMMON_LDLIBS) -lm))
