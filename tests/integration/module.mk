# tests/integration — real loomd + loom-worker-cpu processes on free loopback
# ports (tests/integration/lib.sh), driven through the loom CLI.
INTEG_TESTS := $(sort $(wildcard tests/integration/test_*.sh))
$(foreach t,$(INTEG_TESTS),$(eval $(call SCRIPT_TEST,integ_$(patsubst test_%.sh,%,$(notdir $(t))),$(t))))
# test_hostile.sh speaks the wire protocol from Python (generated modules).
$(BUILD)/tests/integ_hostile: $(PROTO_PY)
$(BUILD)/tests/integ_multihost: $(PROTO_PY)

# A FAKE llm.generate worker for the example-workflow test (a helper, not a
# test): real worker skeleton, scripted answers; see fake_llm_worker.c.
FAKE_LLM_ARCHIVES := $(BUILD)/lib/libloom_worker.a $(BUILD)/lib/libloom_protocol.a $(BUILD)/lib/libloom_common.a
$(BUILD)/tests/fake-llm-worker: $(call objs,tests/integration/fake_llm_worker.c) $(FAKE_LLM_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_BASE) -o $@ $(call objs,tests/integration/fake_llm_worker.c) -Wl,--start-group $(FAKE_LLM_ARCHIVES) -Wl,--end-group $(WORKER_LDLIBS) $(PROTOCOL_LDLIBS) $(COMMON_LDLIBS) -lm
$(BUILD)/tests/integ_examples_fake_llm: $(BUILD)/tests/fake-llm-worker
$(BUILD)/tests/integ_module_dispatch: $(BUILD)/tests/fake-llm-worker
$(BUILD)/tests/integ_churn_workers: $(PROTO_PY)

# make soak-llm: the three examples on real CPU workers with generated
# models, react-agent and research-fanout 20 times each (every JSON output
# schema-valid); make test runs them twice.
.PHONY: soak-llm
soak-llm: $(BUILD)/bin/loom $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu
	BUILD=$(BUILD) RUNS=$${RUNS:-20} ./tests/integration/test_examples_real_llm.sh

# make soak: the long churn runs (tests/soak.sh), printing their figures.
.PHONY: soak
soak: $(BUILD)/bin/loomd $(BUILD)/bin/loom-worker-cpu $(PROTO_PY)
	BUILD=$(BUILD) ./tests/soak.sh

# test_mcp.sh runs real MCP servers from npm (deploy/npm/package.json),
# installed into var/npm; without npm or the registry the test skips.
$(BUILD)/tests/integ_mcp: var/npm/.installed
var/npm/.installed: deploy/npm/package.json deploy/install-npm.sh
	@./deploy/install-npm.sh || echo "warning: deploy/install-npm.sh failed; MCP tests will skip" >&2
$(BUILD)/tests/integ_mixed_llama_endpoint: var/npm/.installed
