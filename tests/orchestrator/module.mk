# tests/orchestrator — cmocka unit tests for the orchestrator and worker
# libraries (store, state machines, scheduler, op registry).
$(eval $(call TEST,unit_store,tests/orchestrator/test_store.c,$(BUILD)/lib/libloom_orchestrator.a $(BUILD)/lib/libloom_common.a,-lcmocka $(ORCHESTRATOR_LDLIBS) $(COMMON_LDLIBS)))
