# tests/llm — LLM tests: C unit tests, and the CPU backend against the NumPy
# reference on generated GGUF models (gen_gguf.py, reference.py).
$(eval $(call TEST,llm_units,tests/llm/test_llm_units.c,$(LLM_ARCHIVES),-lcmocka $(LLM_LDLIBS)))
$(eval $(call SCRIPT_TEST,llm_reference,tests/llm/test_llm_reference.sh))
$(BUILD)/tests/llm_reference: $(BUILD)/bin/loom
$(eval $(call SCRIPT_TEST,llm_workflow,tests/llm/test_llm_workflow.sh))
$(BUILD)/tests/llm_workflow: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
$(eval $(call TEST,llm_gpu,tests/llm/test_llm_gpu.c,$(LLMCUDA_ARCHIVES) $(LLM_ARCHIVES),$(LLMCUDA_LDLIBS) $(LLM_LDLIBS)))
