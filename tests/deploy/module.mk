# tests/deploy — what an operator runs: `make install` into a DESTDIR and
# loomd + a worker + the CLI from that tree (with systemd's readiness
# protocol), config files, the systemd units (systemd-analyze verify) and the
# Kubernetes manifests (schema validation). See tests/deploy/README.md.
DEPLOY_TESTS := $(sort $(wildcard tests/deploy/test_*.sh))
$(foreach t,$(DEPLOY_TESTS),$(eval $(call SCRIPT_TEST,deploy_$(patsubst test_%.sh,%,$(notdir $(t))),$(t))))
