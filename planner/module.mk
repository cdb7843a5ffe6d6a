# planner/ — libloom_planner.a: workflow parser, granular graph, catalog,
# cost model, placement, TCO, simulator (pure library, no daemon needed).
PLANNER_SRCS := $(wildcard planner/*.c)
$(eval $(call LIB,planner,$(PLANNER_SRCS)))
PLANNER_LDLIBS := -lyaml -ljansson -lglpk -lm
CLI_ARCHIVES += $(BUILD)/lib/libloom_planner.a
CLI_LDLIBS += $(PLANNER_LDLIBS)
