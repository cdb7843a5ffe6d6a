# workers/common — libloom_worker.a: op registry, worker skeleton, ops
# shared by every device (noop/echo/sleep, tool.exec, tool.http).
# Every workers/common/*.c goes in; modules adding files there append their
# system libraries to WORKER_LDLIBS. The CLI talks to MCP servers through
# mcp.c (libcurl) and fetches step outputs by reference (outref.c).
WORKER_SRCS := $(wildcard workers/common/*.c)
$(eval $(call LIB,worker,$(WORKER_SRCS)))
WORKER_LDLIBS += -ljansson -lcurl -lzmq -lprotobuf-c -lxxhash
CLI_LDLIBS += -lcurl -lzmq -lprotobuf-c -lxxhash
