# tests/workflow — workflow YAML parser, expressions and templates (cmocka),
# and `loom validate` against examples/ and examples/broken/ (byte for byte).
WORKFLOW_TEST_LIBS := $(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_common.a
$(eval $(call TEST,unit_workflow,tests/workflow/test_workflow.c,$(WORKFLOW_TEST_LIBS),-lcmocka $(PLANNER_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call TEST,unit_expr,tests/workflow/test_expr.c,$(WORKFLOW_TEST_LIBS),-lcmocka $(PLANNER_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call SCRIPT_TEST,workflow_examples,tests/workflow/broken_examples.sh))
# The broken-examples test runs the CLI.
$(BUILD)/tests/workflow_examples: $(BUILD)/bin/loom

# make bench-workflow: loader throughput vs libyaml's own event parse of the
# same bytes, expression evaluation and step rendering (bench/workflow_bench.c).
$(BUILD)/bench/workflow_bench: $(call objs,bench/workflow_bench.c) $(WORKFLOW_TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_BASE) -o $@ $(call objs,bench/workflow_bench.c) -Wl,--start-group $(WORKFLOW_TEST_LIBS) -Wl,--end-group $(PLANNER_LDLIBS) $(COMMON_LDLIBS)
.PHONY: bench-workflow
bench-workflow: $(BUILD)/bench/workflow_bench
	@echo "== bench-workflow: $(BUILD)/bench/workflow_bench"
	@$(BUILD)/bench/workflow_bench
BENCHES += bench-workflow
$(eval $(call SCRIPT_TEST,workflow_tools,tests/workflow/test_tools.sh))
$(eval $(call SCRIPT_TEST,workflow_model_files,tests/workflow/test_model_files.sh))
