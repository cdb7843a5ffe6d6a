# protocol/ — wire contract: .proto schemas, protobuf-c code generated into
# $(BUILD)/gen (never committed), ZeroMQ envelope, status codes, server
# helpers (libloom_protocol.a) and the client library (libloom_client.a).
PROTO_FILES := $(sort $(wildcard protocol/loom/v1/*.proto))
PROTO_GEN_C := $(patsubst protocol/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTO_FILES))
PROTO_GEN_H := $(PROTO_GEN_C:.c=.h)
GEN_HDRS += $(PROTO_GEN_H)

# protoc-c gets a copy of each .proto without its `service` blocks: we do
# not use protobuf-c's RPC stubs, and a method named Register would become
# a struct member named after the C keyword `register`. The services stay in
# the .proto files as the documented contract (and for other languages).
PROTO_STRIPPED := $(patsubst protocol/%,$(BUILD)/gen/proto-c/%,$(PROTO_FILES))
$(BUILD)/gen/proto-c/%.proto: protocol/%.proto
	@mkdir -p $(@D)
	sed '/^service [A-Za-z]* {/,/^}/d' $< > $@

# One protoc-c run writes both files of a .proto (grouped pattern rule).
$(BUILD)/gen/loom/v1/%.pb-c.c $(BUILD)/gen/loom/v1/%.pb-c.h: $(BUILD)/gen/proto-c/loom/v1/%.proto $(PROTO_STRIPPED)
	protoc-c -I$(BUILD)/gen/proto-c --c_out=$(BUILD)/gen $<
.SECONDARY: $(PROTO_GEN_C) $(PROTO_GEN_H) $(PROTO_STRIPPED)

# Python modules for the interop test (tests/protocol/): protoc --python_out.
PROTO_PY := $(patsubst protocol/%.proto,$(BUILD)/gen/py/%_pb2.py,$(PROTO_FILES))
$(BUILD)/gen/py/loom/v1/%_pb2.py: protocol/loom/v1/%.proto
	@mkdir -p $(BUILD)/gen/py
	protoc -Iprotocol --python_out=$(BUILD)/gen/py $<

PROTOCOL_SRCS := protocol/status.c protocol/envelope.c protocol/rpc_server.c protocol/auth.c \
                 protocol/pb_json.c protocol/keys.c protocol/states.c protocol/failover.c \
                 protocol/zpoll.c protocol/prefix_key.c
$(eval $(call LIB,protocol,$(PROTOCOL_SRCS) $(PROTO_GEN_C)))
PROTOCOL_LDLIBS := -lprotobuf-c -lzmq

CLIENT_SRCS := protocol/client.c
$(eval $(call LIB,client,$(CLIENT_SRCS)))
# libloom_client.a needs libloom_protocol.a and libloom_common.a too.
CLIENT_ARCHIVES := $(BUILD)/lib/libloom_client.a $(BUILD)/lib/libloom_protocol.a

# The gateway's OpenAPI document, from the .proto files and their comments.
# Checked in (protocol/openapi.json); the test api_openapi fails when stale.
$(BUILD)/gen/openapi.json: protocol/gen_openapi.py $(PROTO_FILES)
	@mkdir -p $(@D)
	protoc -Iprotocol --include_imports --include_source_info -o $(BUILD)/gen/rpc.descriptor-set \
	  protocol/loom/v1/rpc.proto
	/usr/bin/python3 protocol/gen_openapi.py $(BUILD)/gen/rpc.descriptor-set >$@.tmp
	mv $@.tmp $@
.PHONY: openapi
openapi: $(BUILD)/gen/openapi.json
	cp $< protocol/openapi.json
