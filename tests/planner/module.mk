# tests/planner — cost model, placement, catalog/fleet/profile loaders,
# decomposition, and the `loom plan/tco/simulate` commands.
PLANNER_TEST_LIBS := $(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_common.a
$(eval $(call TEST,unit_planner_place,tests/planner/test_place.c,$(PLANNER_TEST_LIBS),-lcmocka $(PLANNER_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call SCRIPT_TEST,planner_cli,tests/planner/test_cli.sh))
