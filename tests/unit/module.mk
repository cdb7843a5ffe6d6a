# tests/unit — cmocka unit tests, one binary per module group.
$(eval $(call TEST,unit_common,tests/unit/test_common.c,$(BUILD)/lib/libloom_common.a,-lcmocka $(COMMON_LDLIBS)))
