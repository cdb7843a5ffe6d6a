# tests/llm — LLM tests: C unit tests, and the CPU backend against the NumPy
# reference on generated GGUF models (gen_gguf.py, reference.py).
$(eval $(call TEST,llm_units,tests/llm/test_llm_units.c,$(LLM_ARCHIVES),-lcmocka $(LLM_LDLIBS)))
$(eval $(call TEST,llm_kernels,tests/llm/test_llm_kernels.c,$(LLM_ARCHIVES),-lcmocka $(LLM_LDLIBS)))
$(eval $(call TEST,llm_kv_transfer,tests/llm/test_kv_transfer.c,$(LLM_ARCHIVES),-lcmocka $(LLM_LDLIBS)))
$(eval $(call TEST,llm_kv_stream,tests/llm/test_kv_stream.c,$(LLM_ARCHIVES),-lcmocka $(LLM_LDLIBS)))
$(eval $(call TEST,llm_prefix,tests/llm/test_llm_prefix.c,$(LLM_ARCHIVES),-lcmocka $(LLM_LDLIBS)))
$(eval $(call SCRIPT_TEST,llm_reference,tests/llm/test_llm_reference.sh))
$(BUILD)/tests/llm_reference: $(BUILD)/bin/loom
$(eval $(call SCRIPT_TEST,llm_json_budget,tests/llm/test_llm_json_budget.sh))
$(BUILD)/tests/llm_json_budget: $(BUILD)/bin/loom
$(eval $(call SCRIPT_TEST,llm_workflow,tests/llm/test_llm_workflow.sh))
$(BUILD)/tests/llm_workflow: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
ifeq ($(HAVE_CUDA),1)
$(eval $(call TEST,llm_gpu,tests/llm/test_llm_gpu.c,$(LLMCUDA_ARCHIVES) $(LLM_ARCHIVES),$(LLMCUDA_LDLIBS) $(LLM_LDLIBS)))
else # built without the CUDA toolkit: the test reports itself skipped
$(eval $(call SCRIPT_TEST,llm_gpu,tests/llm/skip_no_cuda.sh))
endif

# make bench-llm: TinyLlama-1.1B-shaped models (Q8_0, F16) generated into
# $(BUILD)/bench-llm/ on first use (1.2 and 2.2 GB; never committed), 2
# threads, 5 rounds. With LLAMA_BENCH=path/to/llama-bench the same files run
# on llama.cpp in the same rounds, alternating (make llama-peer builds one
# into $(BUILD)/peer from the pinned node-llama-cpp npm package; bench only).
# The Q8_0 run also measures constrained against plain decoding.
BENCH_LLM_THREADS ?= 2
BENCH_LLM_ROUNDS ?= 5
$(BUILD)/bench/bench_llm: $(call objs,tests/llm/bench_llm.c) $(LLMCUDA_ARCHIVES) $(LLM_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_BASE) -o $@ $(call objs,tests/llm/bench_llm.c) -Wl,--start-group $(LLMCUDA_ARCHIVES) $(LLM_ARCHIVES) -Wl,--end-group $(LLMCUDA_LDLIBS) $(LLM_LDLIBS)
$(BUILD)/bench-llm/tinyllama-%.gguf: tests/llm/gen_gguf.py
	@mkdir -p $(@D)
	/usr/bin/python3 tests/llm/gen_gguf.py --shape tinyllama --type $* --fast -o $@
.PHONY: bench-llm llama-peer
bench-llm: $(BUILD)/bench/bench_llm $(BUILD)/bench-llm/tinyllama-Q8_0.gguf $(BUILD)/bench-llm/tinyllama-F16.gguf
	@echo "== bench-llm: TinyLlama-1.1B shape, random weights, $(BENCH_LLM_THREADS) threads on $$(nproc) cores"
	LLAMA_BENCH=$(LLAMA_BENCH) $(BUILD)/bench/bench_llm --rounds $(BENCH_LLM_ROUNDS) --constrained $(BUILD)/bench-llm/tinyllama-Q8_0.gguf $(BENCH_LLM_THREADS) 64 16
	LLAMA_BENCH=$(LLAMA_BENCH) $(BUILD)/bench/bench_llm --rounds $(BENCH_LLM_ROUNDS) $(BUILD)/bench-llm/tinyllama-F16.gguf $(BENCH_LLM_THREADS) 64 16
llama-peer:
	bench/llama_cpp_peer.sh $(BUILD)/peer
BENCHES += bench-llm

# libFuzzer target (fuzz build only; see tests/fuzz/README.md).
$(eval $(call FUZZ,fuzz_gguf,tests/fuzz/fuzz_gguf.c,$(LLM_ARCHIVES),$(LLM_LDLIBS) $(WORKER_LDLIBS)))
$(eval $(call SCRIPT_TEST,llm_split_workflow,tests/llm/test_llm_split_workflow.sh))
$(BUILD)/tests/llm_split_workflow: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
$(eval $(call SCRIPT_TEST,llm_kv_handoff,tests/llm/test_kv_handoff.sh))
$(eval $(call SCRIPT_TEST,llm_prefix_placement,tests/llm/test_prefix_placement.sh))
$(eval $(call SCRIPT_TEST,llm_kv_stream_split,tests/llm/test_kv_stream_split.sh))
$(BUILD)/tests/llm_kv_stream_split: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
$(BUILD)/tests/llm_kv_handoff: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
$(BUILD)/tests/llm_prefix_placement: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
