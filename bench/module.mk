# bench/ — benchmarks; each adds a phony bench-<name> target to BENCHES.

# bench-dispatch: loomd + 2 CPU workers vs Dask distributed (bench/dispatch.sh).
$(eval $(call PROG,bench-dispatch,bench/dispatch.c,$(BUILD)/lib/libloom_client.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a,$(PROTOCOL_LDLIBS) $(COMMON_LDLIBS)))
# zmq_rtt: the raw ZeroMQ round trip bench-dispatch compares chained steps with.
$(eval $(call PROG,zmq_rtt,bench/zmq_rtt.c,$(BUILD)/lib/libloom_common.a,-lzmq $(COMMON_LDLIBS)))
.PHONY: bench-dispatch
bench-dispatch: $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom $(BUILD)/bin/bench-dispatch $(BUILD)/bin/zmq_rtt
	BUILD=$(BUILD) ./bench/dispatch.sh
BENCHES += bench-dispatch

# bench-dispatch-pg: the same benchmark with loomd's in-memory store vs the
# PostgreSQL store (loomd --db on a throwaway cluster), same run (bench/dispatch_pg.sh).
.PHONY: bench-dispatch-pg
bench-dispatch-pg: $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom $(BUILD)/bin/bench-dispatch
	BUILD=$(BUILD) ./bench/dispatch_pg.sh
BENCHES += bench-dispatch-pg

# bench-http: the HTTP/JSON gateway: small REST calls/s with wrk next to the
# HTTP layer alone, and 1,000 concurrent SSE watchers (bench/http.sh).
.PHONY: bench-http
bench-http: $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom
	BUILD=$(BUILD) ./bench/http.sh
BENCHES += bench-http

# bench-kv: KV cache transfer between two processes (worker object store:
# network and same-host paths) next to raw ZeroMQ and memcpy in the same run.
# Then loomd's memory and PostgreSQL bytes per run (kv_rss.sh), and a
# 10-turn conversation with prefix reuse against without (prefix_bench.c) on
# the thin model kv_rss.sh generates (TinyLlama's KV shape), and a split
# prefill -> decode hand-off with the KV cache streamed layer by layer
# against whole (kv_stream_bench.c) on the same model.
$(eval $(call PROG,bench-kv,bench/kv_bench.c,$(LLM_ARCHIVES),$(LLM_LDLIBS)))
$(eval $(call PROG,bench-kv-prefix,bench/prefix_bench.c,$(LLM_ARCHIVES),$(LLM_LDLIBS)))
$(eval $(call PROG,bench-kv-stream,bench/kv_stream_bench.c,$(LLM_ARCHIVES),$(LLM_LDLIBS)))
.PHONY: bench-kv
bench-kv: $(BUILD)/bin/bench-kv $(BUILD)/bin/bench-kv-prefix $(BUILD)/bin/bench-kv-stream $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom
	$(BUILD)/bin/bench-kv 5 512 4096 32768
	BUILD=$(BUILD) ./bench/kv_rss.sh 2048 256 100 12
	$(BUILD)/bin/bench-kv-prefix $(BUILD)/bench-kv/tinyllama-kv.gguf 3 10
	$(BUILD)/bin/bench-kv-stream $(BUILD)/bench-kv/tinyllama-kv.gguf 3 512 2048
BENCHES += bench-kv

# bench-kv-prefix: prefix reuse. The engine alone (prefix_bench.c: a
# 10-turn conversation with reuse against without), then placement
# (prefix_placement.py: conversations on loomd + two CPU workers, loomd's
# prefix-aware placement against --prefix-placement off), on the thin
# model with TinyLlama's KV shape.
.PHONY: bench-kv-prefix
bench-kv-prefix: $(BUILD)/bin/bench-kv-prefix $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/bin/loom
	@mkdir -p $(BUILD)/bench-kv
	test -f $(BUILD)/bench-kv/tinyllama-kv.gguf || /usr/bin/python3 tests/llm/gen_gguf.py --shape tinyllama-kv --type F16 --fast -o $(BUILD)/bench-kv/tinyllama-kv.gguf >/dev/null
	$(BUILD)/bin/bench-kv-prefix $(BUILD)/bench-kv/tinyllama-kv.gguf 3 10
	BUILD=$(BUILD) /usr/bin/python3 bench/prefix_placement.py $(BUILD)/bench-kv/tinyllama-kv.gguf 2 3 6
BENCHES += bench-kv-prefix

# bench-memory: loomd's RSS after each of twenty runs of 100,000 noop steps, next to
# the documented bound (bench/memory.py).
.PHONY: bench-memory
bench-memory: $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(BUILD)/gen/py/loom/v1/rpc_pb2.py
	BUILD=$(BUILD) /usr/bin/python3 ./bench/memory.py
BENCHES += bench-memory
