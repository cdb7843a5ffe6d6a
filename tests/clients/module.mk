# tests/clients — the client SDKs (clients/) against a real loomd.
$(eval $(call SCRIPT_TEST,clients_python_sdk,tests/clients/test_python_sdk.sh))
