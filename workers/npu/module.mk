# workers/npu — loom-worker-npu: the NPU backend, a software reference
# (emulation) that runs the int8 NPU lowering with the MLIR JIT.
$(eval $(call PROG,loom-worker-npu,workers/npu/main.c workers/cpu/op_kernel.c,$(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_mlir.a $(BUILD)/lib/libloom_common.a,$(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(MLIR_LDLIBS) $(COMMON_LDLIBS) -lm))
