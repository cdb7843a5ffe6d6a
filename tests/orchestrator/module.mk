# tests/orchestrator — cmocka unit tests for the orchestrator and worker
# libraries (store, state machines, scheduler, op registry).
$(eval $(call TEST,unit_store,tests/orchestrator/test_store.c,$(BUILD)/lib/libloom_orchestrator.a $(BUILD)/lib/libloom_common.a,-lcmocka $(ORCHESTRATOR_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call TEST,unit_engine,tests/orchestrator/test_engine.c,$(BUILD)/lib/libloom_orchestrator.a $(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a,-lcmocka $(ORCHESTRATOR_LDLIBS) $(PLANNER_LDLIBS) $(PROTOCOL_LDLIBS) $(COMMON_LDLIBS)))
$(eval $(call TEST,unit_plan_cache,tests/orchestrator/test_plan_cache.c,$(BUILD)/lib/libloom_orchestrator.a $(BUILD)/lib/libloom_planner.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a,-lcmocka $(ORCHESTRATOR_LDLIBS) $(PLANNER_LDLIBS) $(PROTOCOL_LDLIBS) $(COMMON_LDLIBS)))
