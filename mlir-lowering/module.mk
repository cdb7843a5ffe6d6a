# mlir-lowering/ — libloom_mlir.a: the loom dialect (IRDL), emission and
# passes on the MLIR C API, built-in kernels and code generation for CPU
# (LLVM JIT / object), GPU (PTX per sm_XX) and NPU (int8), artifacts.
# The only folder that includes mlir-c/*. MLIR_LDLIBS links the C API.
MLIR_LLVM_LIBDIR := $(shell $(LLVM_CONFIG) --libdir 2>/dev/null || echo /usr/lib/llvm-19/lib)
MLIR_LLVM_INCDIR := $(shell $(LLVM_CONFIG) --includedir 2>/dev/null || echo /usr/lib/llvm-19/include)
CFLAGS_mlir-lowering_ := -isystem $(MLIR_LLVM_INCDIR)

MLIR_SRCS := $(wildcard mlir-lowering/*.c)
$(eval $(call LIB,mlir,$(MLIR_SRCS)))
MLIR_LDLIBS := -L$(MLIR_LLVM_LIBDIR) -Wl,--start-group $(wildcard $(MLIR_LLVM_LIBDIR)/libMLIRCAPI*.a) \
  -Wl,--end-group -lMLIR -lLLVM-19 -lstdc++ -lm -ljansson -Wl,-rpath,$(MLIR_LLVM_LIBDIR) $(COMMON_LDLIBS)

# The IRDL text is compiled into the library as a C string.
$(BUILD)/gen/mlir-lowering/loom_irdl.h: mlir-lowering/loom.irdl.mlir
	@mkdir -p $(@D)
	{ echo '/* generated from mlir-lowering/loom.irdl.mlir: do not edit */'; \
	  echo 'static const char loom_irdl_text[] ='; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $<; echo ';'; } > $@
GEN_HDRS += $(BUILD)/gen/mlir-lowering/loom_irdl.h
# (An order-only pattern prerequisite does not attach to the %.o rule, so
# name the object that includes the header explicitly.)
$(BUILD)/obj/mlir-lowering/ctx.o: $(BUILD)/gen/mlir-lowering/loom_irdl.h

# The `loom` CLI lowers plans (loom plan --emit mlir).
CLI_ARCHIVES += $(BUILD)/lib/libloom_mlir.a
CLI_LDLIBS += $(MLIR_LDLIBS)
