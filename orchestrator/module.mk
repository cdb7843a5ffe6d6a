# orchestrator/ — libloom_orchestrator.a (store interface + in-memory store,
# and later registry, scheduler, stitcher, RPC service) and the loomd daemon.
# Every orchestrator/*.c except main.c goes into the library, so the
# PostgreSQL store (store_pg.c) and HTTP endpoint (http.c) only need to be
# dropped in; they append their system libraries to ORCHESTRATOR_LDLIBS.
ORCHESTRATOR_SRCS := $(filter-out orchestrator/main.c,$(wildcard orchestrator/*.c))
$(eval $(call LIB,orchestrator,$(ORCHESTRATOR_SRCS)))
ORCHESTRATOR_LDLIBS += -ljansson
ORCHESTRATOR_LDLIBS += -lpq  # store_pg.c (PostgreSQL store)
