# tests/pg — the PostgreSQL store, views, HTTP dashboard and metrics against
# a real PostgreSQL 15 started by deploy/pg.sh (see tests/pg/README.md).
# (http.c's gateway speaks the RPC: the protocol library too)
PG_TEST_ARCHIVES := $(BUILD)/lib/libloom_orchestrator.a $(BUILD)/lib/libloom_protocol.a \
                    $(BUILD)/lib/libloom_common.a
PG_TEST_LIBS := $(ORCHESTRATOR_LDLIBS) -lpq -lcmocka -lprotobuf-c -lzmq $(COMMON_LDLIBS) -lm
$(eval $(call TEST,pg_store,tests/pg/test_store_pg.c,$(PG_TEST_ARCHIVES),$(PG_TEST_LIBS)))
$(eval $(call TEST,pg_http,tests/pg/test_http.c,$(PG_TEST_ARCHIVES),$(PG_TEST_LIBS)))
$(eval $(call TEST,pg_lease,tests/pg/test_lease_pg.c,$(PG_TEST_ARCHIVES),$(PG_TEST_LIBS)))
$(eval $(call SCRIPT_TEST,pg_crash_recovery,tests/pg/test_crash_recovery.sh))
$(eval $(call SCRIPT_TEST,pg_db_outage,tests/pg/test_db_outage.sh))
$(eval $(call SCRIPT_TEST,pg_dashboard_loomd,tests/pg/test_dashboard_loomd.sh))
$(eval $(call SCRIPT_TEST,pg_cost_fields,tests/pg/test_cost_fields.sh))
$(eval $(call SCRIPT_TEST,pg_secrets_policy,tests/pg/test_secrets_policy.sh))
$(eval $(call SCRIPT_TEST,pg_worker_keys,tests/pg/test_worker_keys.sh))
$(eval $(call SCRIPT_TEST,pg_churn_loomd,tests/pg/test_churn_loomd.sh))
$(BUILD)/tests/pg_churn_loomd: $(PROTO_PY)
$(eval $(call SCRIPT_TEST,pg_chain_restart,tests/pg/test_chain_restart.sh))
$(eval $(call SCRIPT_TEST,pg_failover,tests/pg/test_failover.sh))
$(BUILD)/tests/pg_failover: $(PROTO_PY) $(BUILD)/bin/loom
$(eval $(call SCRIPT_TEST,pg_output_by_reference,tests/pg/test_output_by_reference.sh))
