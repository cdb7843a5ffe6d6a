# deploy/ — the SQL schema is compiled into loomd: deploy/sql/embed.sh turns
# deploy/sql/*.sql and deploy/sql/views/*.sql into $(BUILD)/gen/store_sql.inc,
# included by orchestrator/store_pg.c. The dashboard assets
# (orchestrator/dashboard/*) are embedded the same way for orchestrator/http.c.
$(BUILD)/gen/store_sql.inc: deploy/sql/embed.sh $(wildcard deploy/sql/*.sql deploy/sql/views/*.sql)
	@mkdir -p $(@D)
	deploy/sql/embed.sh $(abspath $@)
GEN_HDRS += $(BUILD)/gen/store_sql.inc
$(BUILD)/obj/orchestrator/store_pg.o: $(BUILD)/gen/store_sql.inc

# libpq's headers live outside the default include path (Debian).
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CFLAGS_orchestrator_ += $(PQ_CFLAGS)
CFLAGS_tests_pg_ += $(PQ_CFLAGS)

# The dashboard page, embedded into loomd for orchestrator/http.c.
$(BUILD)/gen/dashboard_assets.inc: orchestrator/dashboard/embed.sh $(wildcard orchestrator/dashboard/*.html orchestrator/dashboard/*.js orchestrator/dashboard/*.css)
	@mkdir -p $(@D)
	orchestrator/dashboard/embed.sh $(abspath $@)
GEN_HDRS += $(BUILD)/gen/dashboard_assets.inc
$(BUILD)/obj/orchestrator/http.o: $(BUILD)/gen/dashboard_assets.inc
