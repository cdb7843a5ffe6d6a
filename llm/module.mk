# llm/ — the GGUF LLM engine (libloom_llm.a): reader, tokenizer, KV cache
# objects, model, generation loop, sampling, worker ops, the backend table
# and its CPU backend (llm/cpu/). The CUDA backend (llm/cuda/) is its own
# archive, libloom_llmcuda.a, linked only by what runs on a GPU.
# `loom llm` in cli/cmd_llm.c runs the engine from the command line.
LLM_SRCS := $(wildcard llm/*.c llm/cpu/*.c)
$(eval $(call LIB,llm,$(LLM_SRCS)))
# KV caches travel by reference through the worker's object store
# (workers/common/objstore.c: ZeroMQ, objects.proto in libloom_protocol.a).
LLM_ARCHIVES := $(BUILD)/lib/libloom_llm.a $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a
LLM_LDLIBS := -lm -ljansson -lzmq -lprotobuf-c -lxxhash $(COMMON_LDLIBS)
CLI_ARCHIVES += $(BUILD)/lib/libloom_llm.a $(BUILD)/lib/libloom_worker.a
CLI_LDLIBS += -lm -ljansson

# --- CUDA backend: one .cu per op (matvec, attention, rmsnorm, rope,
# silu_mul, elementwise) built by nvcc for sm_75/80/89/90 (+ PTX for newer
# GPUs; CUDA 13 no longer targets sm_70), host code in llm_cuda.c over
# cudart + cuBLAS -> libloom_llmcuda.a. Needs nvcc to build, a device to run.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
# The CUDA toolkit is not a Debian package (a fresh Debian 12 has no nvcc):
# without it this backend, loom-worker-gpu (workers/gpu/) and the CUDA
# tests are left out of the build (make says so); everything else builds.
HAVE_CUDA := $(if $(wildcard $(NVCC)),1,)
ifeq ($(HAVE_CUDA),1)
NVCC_ARCHS ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
              -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCC_FLAGS := -std=c++17 -O2 -I. $(NVCC_ARCHS) -MMD -MP -Xcompiler -Wall,-Wextra -Werror all-warnings
CFLAGS_llm_cuda_ += -I$(CUDA_HOME)/include
$(BUILD)/obj/llm/cuda/%.o: llm/cuda/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c -o $@ $<
LLMCUDA_OBJS := $(patsubst %.cu,$(BUILD)/obj/%.o,$(wildcard llm/cuda/*.cu)) $(BUILD)/obj/llm/cuda/llm_cuda.o
$(BUILD)/lib/libloom_llmcuda.a: $(LLMCUDA_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^
LIBS += $(BUILD)/lib/libloom_llmcuda.a
LLMCUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++ -lm
LLMCUDA_ARCHIVES := $(BUILD)/lib/libloom_llmcuda.a $(BUILD)/lib/libloom_llm.a
else
$(info llm: no CUDA toolkit ($(NVCC) not found; set CUDA_HOME): the CUDA backend, loom-worker-gpu and the CUDA tests are not built)
endif
