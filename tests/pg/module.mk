# tests/pg — the PostgreSQL store, views, HTTP dashboard and metrics against
# a real PostgreSQL 15 started by deploy/pg.sh (see tests/pg/README.md).
PG_TEST_LIBS := -lpq -lcmocka $(COMMON_LDLIBS) -lm
$(eval $(call TEST,pg_store,tests/pg/test_store_pg.c orchestrator/store_pg.c orchestrator/store_pg_writer.c,$(BUILD)/lib/libloom_common.a,$(PG_TEST_LIBS)))
$(eval $(call TEST,pg_http,tests/pg/test_http.c orchestrator/http.c orchestrator/metrics.c orchestrator/store_pg.c orchestrator/store_pg_writer.c,$(BUILD)/lib/libloom_common.a,$(PG_TEST_LIBS)))
