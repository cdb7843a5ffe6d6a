# workers/cpu — CPU backend.
# --- LLM (llm engineer): libloom_llm.a (model loading, CPU forward,
# sampling, generation loop shared with the GPU backend) and `loom-llm`.
LLM_SRCS := $(filter-out workers/cpu/llm_main.c,$(wildcard workers/cpu/llm_*.c))
$(eval $(call LIB,llm,$(LLM_SRCS)))
LLM_ARCHIVES := $(BUILD)/lib/libloom_llm.a $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_common.a
LLM_LDLIBS := -lm -ljansson $(COMMON_LDLIBS)
$(eval $(call PROG,loom-llm,workers/cpu/llm_main.c,$(LLM_ARCHIVES),$(LLM_LDLIBS)))
