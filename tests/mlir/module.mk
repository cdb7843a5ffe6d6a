# tests/mlir — MLIR lowering tests on real MLIR (one linked binary: linking
# MLIR is heavy) plus golden-file checks of the loom dialect passes.
MLIR_TEST_ARCHIVES := $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a
$(eval $(call TEST,mlir_unit,tests/mlir/test_kernels.c tests/mlir/test_lower.c,$(MLIR_TEST_ARCHIVES),-lcmocka $(MLIR_LDLIBS)))
$(eval $(call SCRIPT_TEST,mlir_golden,tests/mlir/golden.sh))
