#!/usr/bin/python3
"""gen_openapi.py DESCRIPTOR_SET > openapi.json

Writes the OpenAPI 3 document of loomd's HTTP/JSON gateway
(orchestrator/http_api.c) from the .proto files: the schemas and their
descriptions come from the messages and their comments, so the document
cannot drift from the contract. DESCRIPTOR_SET is the output of
`protoc --include_imports --include_source_info -o SET loom/v1/rpc.proto`.
The result is checked in as protocol/openapi.json; `make openapi` rewrites
it and the test api_openapi fails when it is stale.
"""
import json
import sys

from google.protobuf import descriptor_pb2 as d

# The REST mapping of service loom.v1.Loom; http_api.c implements it.
# (method, path, rpc, request, reply, how the request is carried)
ROUTES = [
    ("post", "/v1/runs", "Submit", "SubmitRequest", "SubmitReply", "body"),
    ("get", "/v1/runs", "List", "ListRequest", "ListReply", "query"),
    ("get", "/v1/runs/{run_id}", "Get", "GetRequest", "GetReply", "query"),
    ("post", "/v1/runs/{run_id}/cancel", "Cancel", "CancelRequest", "CancelReply", "body"),
    ("post", "/v1/runs/{run_id}/retry", "Retry", "RetryRequest", "SubmitReply", "body"),
    ("get", "/v1/runs/{run_id}/events", "Watch", "WatchRequest", "RunEvent", "sse"),
    ("post", "/v1/plan", "Plan", "PlanRequest", "PlanReply", "body"),
    ("get", "/v1/workers", "ListWorkers", "ListWorkersRequest", "ListWorkersReply", "query"),
    ("get", "/v1/health", "Health", "HealthRequest", "HealthReply", "query"),
]

HTTP_OF_STATUS = """\
| RPC status | HTTP |
|---|---|
| OK | 200 |
| INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE | 400 |
| UNAUTHENTICATED | 401 |
| PERMISSION_DENIED | 403 |
| NOT_FOUND | 404 |
| ALREADY_EXISTS, ABORTED | 409 |
| RESOURCE_EXHAUSTED | 429 |
| CANCELLED | 499 |
| UNIMPLEMENTED | 501 |
| UNAVAILABLE | 503 |
| DEADLINE_EXCEEDED | 504 |
| UNKNOWN, INTERNAL, DATA_LOSS | 500 |
"""

SCALARS = {
    d.FieldDescriptorProto.TYPE_DOUBLE: {"type": "number", "format": "double"},
    d.FieldDescriptorProto.TYPE_FLOAT: {"type": "number", "format": "float"},
    d.FieldDescriptorProto.TYPE_INT64: {"type": "string", "format": "int64"},
    d.FieldDescriptorProto.TYPE_UINT64: {"type": "string", "format": "uint64"},
    d.FieldDescriptorProto.TYPE_SINT64: {"type": "string", "format": "int64"},
    d.FieldDescriptorProto.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    d.FieldDescriptorProto.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    d.FieldDescriptorProto.TYPE_INT32: {"type": "integer", "format": "int32"},
    d.FieldDescriptorProto.TYPE_SINT32: {"type": "integer", "format": "int32"},
    d.FieldDescriptorProto.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    d.FieldDescriptorProto.TYPE_UINT32: {"type": "integer", "format": "uint32"},
    d.FieldDescriptorProto.TYPE_FIXED32: {"type": "integer", "format": "uint32"},
    d.FieldDescriptorProto.TYPE_BOOL: {"type": "boolean"},
    d.FieldDescriptorProto.TYPE_STRING: {"type": "string"},
    d.FieldDescriptorProto.TYPE_BYTES: {"type": "string", "format": "byte"},
}


def clean(comment):
    return " ".join(line.strip() for line in comment.strip().splitlines()).strip()


def load(path):
    fds = d.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    messages, enums = {}, {}
    for fd in fds.file:
        if not fd.package.startswith("loom."):
            continue
        docs = {}  # path tuple -> comment
        for loc in fd.source_code_info.location:
            text = loc.leading_comments or loc.trailing_comments
            if text:
                docs[tuple(loc.path)] = clean(text)
        for i, m in enumerate(fd.message_type):
            messages[m.name] = (m, docs, (4, i))
        for i, e in enumerate(fd.enum_type):
            enums[e.name] = (e, docs.get((5, i), ""))
    return messages, enums


def field_schema(f, doc):
    if f.type == d.FieldDescriptorProto.TYPE_MESSAGE:
        s = {"$ref": "#/components/schemas/" + f.type_name.split(".")[-1]}
    elif f.type == d.FieldDescriptorProto.TYPE_ENUM:
        s = {"$ref": "#/components/schemas/" + f.type_name.split(".")[-1]}
    else:
        s = dict(SCALARS[f.type])
    if f.label == d.FieldDescriptorProto.LABEL_REPEATED:
        s = {"type": "array", "items": s}
    if doc:
        s = {"allOf": [s], "description": doc} if "$ref" in s else dict(s, description=doc)
    return s


def build(messages, enums):
    schemas = {}
    for name, (m, docs, path) in sorted(messages.items()):
        props = {}
        for j, f in enumerate(m.field):
            props[f.name] = field_schema(f, docs.get(path + (2, j), ""))
        s = {"type": "object", "properties": props}
        if docs.get(path):
            s["description"] = docs[path]
        schemas[name] = s
    for name, (e, doc) in sorted(enums.items()):
        s = {"type": "string", "enum": [v.name for v in e.value]}
        if doc:
            s["description"] = doc
        schemas[name] = s
    schemas["Status"] = {
        "type": "object",
        "description": "The answer to a failed call: the RPC status, its name and message, "
                       "and the structured error when loomd sent one.",
        "properties": {
            "code": {"type": "integer", "description": "RPC status code (envelope.proto StatusCode)"},
            "status": {"type": "string", "description": "its name, e.g. NOT_FOUND"},
            "message": {"type": "string"},
            "error": {"$ref": "#/components/schemas/Error"},
        },
        "required": ["code", "status", "message"],
    }
    paths = {}
    for method, path, rpc, req, rep, carry in ROUTES:
        m, docs, mpath = messages[req]
        params = []
        if "{run_id}" in path:
            params.append({"name": "run_id", "in": "path", "required": True,
                           "schema": {"type": "string"}, "description": "the run's id"})
        if carry in ("query", "sse"):
            for j, f in enumerate(m.field):
                if f.name == "run_id" and "{run_id}" in path:
                    continue
                sch = field_schema(f, "")
                params.append({"name": f.name, "in": "query", "required": False, "schema": sch,
                               "description": docs.get(mpath + (2, j), "")})
        op = {
            "operationId": rpc,
            "summary": "loom.v1.Loom/%s" % rpc,
            "parameters": params + [{
                "name": "X-Loom-Timeout-Ms", "in": "header", "required": False,
                "schema": {"type": "integer"},
                "description": "deadline of the call in ms (default 60000 for unary calls, "
                               "none for events; 0 = none)"}],
            "responses": {
                "default": {"description": "failure (see the status mapping in info)",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Status"}}}},
            },
        }
        if docs.get(mpath):
            op["description"] = docs[mpath]
        if carry == "body":
            op["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/" + req}}}}
        if carry == "sse":
            op["parameters"].append({
                "name": "Last-Event-ID", "in": "header", "required": False,
                "schema": {"type": "string"},
                "description": "resume after this event seq (what EventSource sends on reconnect)"})
            op["responses"]["200"] = {
                "description": "server-sent events: one per RunEvent (`id:` its seq, `event:` its "
                               "kind, `data:` the RunEvent as JSON), then `event: end` with a "
                               "Status (code 0 when the run finished). Failures before the first "
                               "event are plain JSON errors (e.g. 404 for an unknown run).",
                "content": {"text/event-stream": {
                    "schema": {"$ref": "#/components/schemas/" + rep}}}}
        else:
            op["responses"]["200"] = {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/" + rep}}}}
        paths.setdefault(path, {})[method] = op
    paths["/v1/openapi.json"] = {"get": {
        "operationId": "OpenAPI", "summary": "this document", "security": [],
        "responses": {"200": {"description": "OK",
                              "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Loom HTTP/JSON gateway",
            "version": "v1",
            "description": (
                "REST for every RPC of service loom.v1.Loom (protocol/loom/v1/rpc.proto), "
                "served by `loomd --http HOST:PORT` under /v1. Bodies are the proto3 JSON form "
                "of the messages (field names as in the .proto, enums by name, 64-bit integers "
                "as strings). Calls go through loomd's RPC, so they are authenticated as the RPC "
                "is: send `Authorization: Bearer TOKEN` when loomd runs with --auth-token. "
                "Failures answer a Status with this mapping:\n\n" + HTTP_OF_STATUS),
        },
        "servers": [{"url": "http://127.0.0.1:7480"}],
        "security": [{"bearerAuth": []}, {}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    }


def main():
    messages, enums = load(sys.argv[1])
    json.dump(build(messages, enums), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
