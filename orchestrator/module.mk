# orchestrator/ — libloom_orchestrator.a (store interface + in-memory store,
# and later registry, scheduler, stitcher, RPC service) and the loomd daemon.
# Every orchestrator/*.c except main.c goes into the library, so the
# PostgreSQL store (store_pg.c) and HTTP endpoint (http.c) only need to be
# dropped in; they append their system libraries to ORCHESTRATOR_LDLIBS.
ORCHESTRATOR_SRCS := $(filter-out orchestrator/main.c,$(wildcard orchestrator/*.c))
$(eval $(call LIB,orchestrator,$(ORCHESTRATOR_SRCS)))
ORCHESTRATOR_LDLIBS += -ljansson -lm
ORCHESTRATOR_LDLIBS += -lz  # plan_codec.c (stored plans, zlib)
ORCHESTRATOR_LDLIBS += -lpq  # store_pg.c (PostgreSQL store)
ORCHESTRATOR_LDLIBS += -lmicrohttpd  # http.c (dashboard, /metrics, gateway)

# The gateway's OpenAPI document (checked in as protocol/openapi.json, made
# by protocol/gen_openapi.py: `make openapi`) is compiled into loomd.
$(BUILD)/gen/openapi_json.inc: protocol/openapi.json
	@mkdir -p $(@D)
	{ echo '/* Generated from protocol/openapi.json; do not edit. */'; \
	  echo 'const char http_openapi_json[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; \
	  echo 'const size_t http_openapi_json_len = sizeof http_openapi_json - 1;'; } >$@.tmp
	mv $@.tmp $@
GEN_HDRS += $(BUILD)/gen/openapi_json.inc
$(BUILD)/obj/orchestrator/http_api.o: $(BUILD)/gen/openapi_json.inc

# loomd links the planner (workflow parser), protocol and common libraries.
# Their names are spelled out because orchestrator/module.mk is included
# before planner/ and protocol/ define their variables.
LOOMD_ARCHIVES := $(BUILD)/lib/libloom_orchestrator.a $(BUILD)/lib/libloom_planner.a \
                  $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a
LOOMD_LDLIBS := -ljansson -lz -lpq -lmicrohttpd -lyaml -lglpk -lprotobuf-c -lzmq $(COMMON_LDLIBS) -lm
# plan_lower.c (mlir engineer) lowers each planned run; named as a source
# because placement_planner.c only references it weakly.
$(eval $(call PROG,loomd,orchestrator/main.c mlir-lowering/plan_lower.c,$(LOOMD_ARCHIVES) $(BUILD)/lib/libloom_mlir.a,$(LOOMD_LDLIBS) $(MLIR_LDLIBS)))

# The CLI's run/status/runs/workers/cancel talk to loomd through the client library.
CLI_ARCHIVES += $(BUILD)/lib/libloom_client.a $(BUILD)/lib/libloom_protocol.a
CLI_LDLIBS += -lprotobuf-c -lzmq -ljansson
