# workers/gpu/ — the GPU worker. cudrv.c (CUDA driver API via dlopen, PTX
# launches of compiled units) is libloom_cudrv.a; it needs no CUDA at build
# time. loom-worker-gpu (main.c) serves the LLM ops on the LLM engine's CUDA
# backend (llm/cuda/, libloom_llmcuda.a) and compute on cudrv.
$(eval $(call LIB,cudrv,workers/gpu/cudrv.c))
CUDRV_LDLIBS := -ldl
# Built only with the CUDA toolkit (HAVE_CUDA, llm/module.mk).
ifeq ($(HAVE_CUDA),1)
# compute on the GPU (op_kernel_gpu.c, mlir engineer): PTX compiled by
# mlir-lowering and launched through cudrv, so MLIR is linked in too.
$(eval $(call PROG,loom-worker-gpu,workers/gpu/main.c workers/gpu/op_kernel_gpu.c,$(LLMCUDA_ARCHIVES) $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_cudrv.a $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a,$(LLMCUDA_LDLIBS) -ljansson $(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(MLIR_LDLIBS) $(CUDRV_LDLIBS) $(COMMON_LDLIBS)))
endif
