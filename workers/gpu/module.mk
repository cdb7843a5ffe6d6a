# workers/gpu/ — the GPU worker. cudrv.c (CUDA driver API via dlopen, PTX
# launches of compiled units) is libloom_cudrv.a; it needs no CUDA at build
# time. The worker binary and its .cu kernels are added by the llm engineer.
$(eval $(call LIB,cudrv,workers/gpu/cudrv.c))
CUDRV_LDLIBS := -ldl
