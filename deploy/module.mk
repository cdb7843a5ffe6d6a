# deploy/ — the SQL schema is compiled into loomd: deploy/sql/embed.sh turns
# deploy/sql/*.sql and deploy/sql/views/*.sql into $(BUILD)/gen/store_sql.inc,
# included by orchestrator/store_pg.c. The dashboard assets
# (orchestrator/dashboard/*) are embedded the same way for orchestrator/http.c.
# (The folder itself is a prerequisite: a migration renamed or removed
# changes its mtime, not any remaining file's.)
$(BUILD)/gen/store_sql.inc: deploy/sql/embed.sh deploy/sql $(wildcard deploy/sql/*.sql deploy/sql/views/*.sql)
	@mkdir -p $(@D)
	deploy/sql/embed.sh $(abspath $@)
GEN_HDRS += $(BUILD)/gen/store_sql.inc
$(BUILD)/obj/orchestrator/store_pg.o: $(BUILD)/gen/store_sql.inc

# libpq's headers live outside the default include path (Debian).
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CFLAGS_orchestrator_ += $(PQ_CFLAGS)
CFLAGS_tests_pg_ += $(PQ_CFLAGS)

# The dashboard page, embedded into loomd for orchestrator/http.c.
$(BUILD)/gen/dashboard_assets.inc: orchestrator/dashboard/embed.sh $(wildcard orchestrator/dashboard/*.html orchestrator/dashboard/*.js orchestrator/dashboard/*.css)
	@mkdir -p $(@D)
	orchestrator/dashboard/embed.sh $(abspath $@)
GEN_HDRS += $(BUILD)/gen/dashboard_assets.inc
$(BUILD)/obj/orchestrator/http.o: $(BUILD)/gen/dashboard_assets.inc

# ---- make install ------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=/tmp/pkg] [SYSCONFDIR=...]
#   PREFIX/bin               loomd, loom, loom-worker-{cpu,gpu,npu} (gpu: with CUDA)
#   PREFIX/share/loom        catalog.yaml, sql/ (migrations + views, also
#                            embedded in loomd), examples/, grafana/, deploy.md
#   SYSCONFDIR/loom          example configs (*.conf, loomd.env); existing
#                            files are kept (your edits survive a reinstall)
#   UNITDIR                  loomd.service, loom-worker@.service
# Commands find share/loom relative to their own binary (common/paths.h),
# so the tree can be moved as a whole. SYSCONFDIR is /etc for PREFIX=/usr.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/loom
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
# loom-worker-gpu only when it was built (with the CUDA toolkit; workers/gpu).
INSTALL_BINS = loomd loom loom-worker-cpu $(if $(HAVE_CUDA),loom-worker-gpu) loom-worker-npu
UNIT_SUBST := sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g'

.PHONY: install uninstall
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/sql/views $(DESTDIR)$(SYSCONFDIR)/loom $(DESTDIR)$(UNITDIR)
	install -m 755 $(addprefix $(BUILD)/bin/,$(INSTALL_BINS)) $(DESTDIR)$(BINDIR)/
	install -m 644 examples/catalog.yaml $(DESTDIR)$(DATADIR)/catalog.yaml
	install -m 644 deploy/sql/[0-9]*.sql $(DESTDIR)$(DATADIR)/sql/
	install -m 644 deploy/sql/views/*.sql $(DESTDIR)$(DATADIR)/sql/views/
	install -m 644 deploy/README.md $(DESTDIR)$(DATADIR)/deploy.md
	rm -rf $(DESTDIR)$(DATADIR)/examples $(DESTDIR)$(DATADIR)/grafana
	cp -R examples $(DESTDIR)$(DATADIR)/examples
	cp -R deploy/grafana $(DESTDIR)$(DATADIR)/grafana
	for f in deploy/config/*; do \
	  d=$(DESTDIR)$(SYSCONFDIR)/loom/$${f##*/}; \
	  [ -e "$$d" ] || install -m $$(case $$f in *.env) echo 600;; *) echo 644;; esac) "$$f" "$$d"; \
	done
	for u in deploy/systemd/*.service.in; do \
	  $(UNIT_SUBST) "$$u" >$(DESTDIR)$(UNITDIR)/$$(basename "$$u" .in); \
	  chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename "$$u" .in); \
	done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_BINS))
	rm -f $(DESTDIR)$(UNITDIR)/loomd.service $(DESTDIR)$(UNITDIR)/loom-worker@.service
	rm -rf $(DESTDIR)$(DATADIR)
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/loom (your configuration)"
