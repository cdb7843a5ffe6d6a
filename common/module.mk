# common/ — libloom_common.a: arena, errors, logging, map, buffer, clock, SHA,
# config files, data paths, service manager notifications (libsystemd).
COMMON_SRCS := $(wildcard common/*.c)
$(eval $(call LIB,common,$(COMMON_SRCS)))
COMMON_LDLIBS := -lcrypto -lsystemd
