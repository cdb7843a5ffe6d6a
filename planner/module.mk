# planner/ — libloom_planner.a: workflow YAML parser/validator, template and
# expression language (workflow/expr/value), and the planner proper (catalog,
# cost model, placement, TCO, simulator). Every planner/*.c goes in the library.
PLANNER_SRCS := $(wildcard planner/*.c)
$(eval $(call LIB,planner,$(PLANNER_SRCS)))
PLANNER_LDLIBS := -lyaml -ljansson -lglpk -lm
CLI_ARCHIVES += $(BUILD)/lib/libloom_planner.a
CLI_LDLIBS += $(PLANNER_LDLIBS)
