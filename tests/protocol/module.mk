# tests/protocol — the wire contract end to end: a real loom-test-server
# process (built on protocol/rpc_server.h like loomd) on a free loopback
# port, the C client library against it, and a Python client built from the
# .proto files alone.
PROTO_TEST_ARCHIVES := $(BUILD)/lib/libloom_client.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a
PROTO_TEST_LDLIBS := $(PROTOCOL_LDLIBS) $(COMMON_LDLIBS)

# The test server is a helper, not a test: built next to the tests.
$(BUILD)/tests/loom-test-server: $(call objs,tests/protocol/test_server.c) $(PROTO_TEST_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_BASE) -o $@ $(call objs,tests/protocol/test_server.c) -Wl,--start-group $(PROTO_TEST_ARCHIVES) -Wl,--end-group $(PROTO_TEST_LDLIBS)

$(eval $(call TEST,protocol_rpc,tests/protocol/test_protocol.c,$(PROTO_TEST_ARCHIVES),-lcmocka $(PROTO_TEST_LDLIBS)))
$(BUILD)/tests/protocol_rpc: $(BUILD)/tests/loom-test-server

$(eval $(call SCRIPT_TEST,protocol_python,tests/protocol/test_python.sh))
$(BUILD)/tests/protocol_python: $(PROTO_PY) $(BUILD)/tests/loom-test-server

# bench-rpc: Loom RPC vs raw ZeroMQ in the same run (make bench).
$(BUILD)/bench/bench_rpc: $(call objs,bench/bench_rpc.c) $(PROTO_TEST_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_BASE) -o $@ $(call objs,bench/bench_rpc.c) -Wl,--start-group $(PROTO_TEST_ARCHIVES) -Wl,--end-group $(PROTO_TEST_LDLIBS)
.PHONY: bench-rpc
bench-rpc: $(BUILD)/bench/bench_rpc
	$(BUILD)/bench/bench_rpc
BENCHES += bench-rpc

$(eval $(call SCRIPT_TEST,protocol_keygen,tests/protocol/test_keygen.sh))
$(BUILD)/tests/protocol_keygen: $(PROTO_PY) $(BUILD)/tests/loom-test-server $(BUILD)/bin/loom

# protobuf-c <-> JSON (the HTTP gateway's bodies).
$(eval $(call TEST,protocol_pb_json,tests/protocol/test_pb_json.c,$(PROTO_TEST_ARCHIVES),-lcmocka -ljansson $(PROTO_TEST_LDLIBS)))
$(eval $(call TEST,protocol_states,tests/protocol/test_states.c,$(PROTO_TEST_ARCHIVES),-lcmocka $(PROTO_TEST_LDLIBS)))

# The checked-in OpenAPI document is what protocol/gen_openapi.py makes
# from the .proto files now (`make openapi` refreshes it).
$(eval $(call SCRIPT_TEST,protocol_openapi,tests/protocol/test_openapi.sh))
$(BUILD)/tests/protocol_openapi: $(BUILD)/gen/openapi.json

$(eval $(call SCRIPT_TEST,protocol_conformance,tests/protocol/test_conformance.sh))
$(BUILD)/tests/protocol_conformance: $(PROTO_PY) $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
$(eval $(call SCRIPT_TEST,protocol_conformance_pg,tests/protocol/test_conformance_pg.sh))
$(BUILD)/tests/protocol_conformance_pg: $(PROTO_PY) $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
