# tests/mlir — MLIR lowering tests on real MLIR (one linked binary: linking
# MLIR is heavy) plus golden-file checks of the loom dialect passes.
MLIR_TEST_ARCHIVES := $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a
$(eval $(call TEST,mlir_unit,tests/mlir/test_kernels.c tests/mlir/test_lower.c tests/mlir/test_runner.c,$(MLIR_TEST_ARCHIVES),-lcmocka $(MLIR_LDLIBS)))
$(eval $(call SCRIPT_TEST,mlir_golden,tests/mlir/golden.sh))
$(eval $(call SCRIPT_TEST,mlir_kernels_numpy,tests/mlir/test_kernels_numpy.sh))
$(BUILD)/tests/mlir_kernels_numpy: $(BUILD)/bin/loom
# GPU launch test: PTX from `loom kernel`, launched through the CUDA driver,
# then the GPU worker's compute path (runner + driver); skips without a
# device. The second (and last) MLIR-linked test binary.
$(BUILD)/tests/mlir_gpu: $(BUILD)/bin/loom
$(eval $(call TEST,mlir_gpu,tests/mlir/test_gpu.c,$(BUILD)/lib/libloom_cudrv.a $(MLIR_TEST_ARCHIVES),$(MLIR_LDLIBS) $(CUDRV_LDLIBS)))

# make bench-mlir: lowering/partitioning a 100-step workflow, cached vs cold
# kernel compiles, JIT code speed (bench/mlir_bench.c).
MLIR_BENCH_OBJS := $(call objs,bench/mlir_bench.c bench/mlir_bench_native.c)
$(BUILD)/obj/bench/mlir_bench_native.o: CFLAGS += -O3 -march=native
$(BUILD)/bench/mlir_bench: $(MLIR_BENCH_OBJS) $(MLIR_TEST_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_BASE) -o $@ $(MLIR_BENCH_OBJS) -Wl,--start-group $(MLIR_TEST_ARCHIVES) -Wl,--end-group $(MLIR_LDLIBS) -lopenblas
.PHONY: bench-mlir
bench-mlir: $(BUILD)/bench/mlir_bench
	@echo "== bench-mlir: $(BUILD)/bench/mlir_bench"
	@$(BUILD)/bench/mlir_bench
BENCHES += bench-mlir
$(BUILD)/tests/mlir_worker_kernels: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom-worker-npu
$(eval $(call SCRIPT_TEST,mlir_worker_kernels,tests/mlir/test_worker_kernels.sh))

# libFuzzer target for the GPU unit reader (fuzz build only; seeds in
# tests/fuzz/corpus/fuzz_gpu_unit/). Built from the reader's source alone.
$(eval $(call FUZZ,fuzz_gpu_unit,tests/mlir/fuzz_gpu_unit.c mlir-lowering/gpu_unit.c,$(BUILD)/lib/libloom_common.a,$(COMMON_LDLIBS)))
