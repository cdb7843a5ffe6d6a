# tests/planner — cost model, placement, catalog/fleet/profile loaders,
# decomposition, and the `loom plan/tco/simulate` commands.
PLANNER_TEST_LIBS := $(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_common.a
$(eval $(call TEST,unit_planner_place,tests/planner/test_place.c,$(PLANNER_TEST_LIBS),-lcmocka $(PLANNER_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call SCRIPT_TEST,planner_cli,tests/planner/test_cli.sh))

# Benchmarks (make bench-planner): see bench/planner_bench.c. Defined here
# because bench/module.mk belongs to the dispatch benchmark.
$(eval $(call PROG,bench_planner,bench/planner_bench.c,$(PLANNER_TEST_LIBS),$(PLANNER_LDLIBS) $(COMMON_LDLIBS)))
.PHONY: bench-planner
bench-planner: $(BUILD)/bin/bench_planner
	$(BUILD)/bin/bench_planner examples/catalog.yaml 1000000
BENCHES += bench-planner
$(eval $(call SCRIPT_TEST,planner_loomd,tests/planner/test_loomd_plan.sh))
# libFuzzer target for the catalog/fleet/profile/workload loaders (fuzz build only; see tests/fuzz/README.md).
$(eval $(call FUZZ,fuzz_planner,tests/planner/fuzz_planner.c,$(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_common.a,$(PLANNER_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call SCRIPT_TEST,planner_loomd_load,tests/planner/test_loomd_load.sh))
$(eval $(call SCRIPT_TEST,planner_endpoint,tests/planner/test_endpoint_plan.sh))
