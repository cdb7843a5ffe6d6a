# workers/gpu/ — the GPU worker. cudrv.c (CUDA driver API via dlopen, PTX
# launches of compiled units) is libloom_cudrv.a; it needs no CUDA at build
# time. The worker binary and its .cu kernels are added by the llm engineer.
$(eval $(call LIB,cudrv,workers/gpu/cudrv.c))
CUDRV_LDLIBS := -ldl

# --- LLM on CUDA (llm engineer): one .cu per op (matvec, attention, rmsnorm,
# rope, silu_mul, elementwise) built by nvcc for sm_75/80/89/90 (+ PTX for
# newer GPUs; CUDA 13 no longer targets sm_70), host code in llm_cuda.c
# over cudart + cuBLAS -> libloom_llmcuda.a; loom-worker-gpu (main.c).
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
# The CUDA toolkit is not a Debian package (a fresh Debian 12 has no nvcc):
# without it the CUDA LLM backend, loom-worker-gpu and the CUDA tests are
# left out of the build (make says so), and everything else builds and runs.
HAVE_CUDA := $(if $(wildcard $(NVCC)),1,)
ifeq ($(HAVE_CUDA),1)
NVCC_ARCHS ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
              -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCC_FLAGS := -std=c++17 -O2 -I. $(NVCC_ARCHS) -MMD -MP -Xcompiler -Wall,-Wextra -Werror all-warnings
CFLAGS_workers_gpu_ += -I$(CUDA_HOME)/include
$(BUILD)/obj/workers/gpu/%.o: workers/gpu/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c -o $@ $<
LLMCUDA_OBJS := $(patsubst %.cu,$(BUILD)/obj/%.o,$(wildcard workers/gpu/*.cu)) $(BUILD)/obj/workers/gpu/llm_cuda.o
$(BUILD)/lib/libloom_llmcuda.a: $(LLMCUDA_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^
LIBS += $(BUILD)/lib/libloom_llmcuda.a
LLMCUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++ -lm
LLMCUDA_ARCHIVES := $(BUILD)/lib/libloom_llmcuda.a $(BUILD)/lib/libloom_llm.a
# compute on the GPU (op_kernel_gpu.c, mlir engineer): PTX compiled by
# mlir-lowering and launched through cudrv, so MLIR is linked in too.
$(eval $(call PROG,loom-worker-gpu,workers/gpu/main.c workers/gpu/op_kernel_gpu.c,$(LLMCUDA_ARCHIVES) $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_cudrv.a $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a,$(LLMCUDA_LDLIBS) -ljansson $(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(MLIR_LDLIBS) $(CUDRV_LDLIBS) $(COMMON_LDLIBS)))
else
$(info workers/gpu: no CUDA toolkit ($(NVCC) not found; set CUDA_HOME): loom-worker-gpu and the CUDA tests are not built)
endif
