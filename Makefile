# lexi-maint: `make demo` runs the main job on samples/; `make test` runs every test tier.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := $(BIN)/lexi-maint --config config/demo.toml

PREFIX      ?= /opt/lexi-maint
UNITDIR     ?= /etc/systemd/system
CONFDIR     ?= /etc/lexi-maint
BINDIR      ?= /usr/local/bin
SYSUSERSDIR ?= /etc/sysusers.d
CATALOGDIR ?= /usr/lib/systemd/catalog
MANDIR ?= /usr/local/share/man
# the pipeline's state_dir of the shipped configuration (created here, not by systemd)
STATEDIR ?= /var/lib/lexi-maint
COMPLETIONDIR ?= /usr/share/bash-completion/completions
# e.g. PIP_OPTS="--no-index --find-links /opt/lexi-maint/wheels" for an offline install
PIP_OPTS ?=
# Debian packages `make install` installs when missing: the venv and the OpenMP runtime of
# the embedded FalkorDB module; pystemd's build dependencies only while the venv has no
# pystemd yet (pystemd ships no wheels). PYSTEMD_BUILD_DEPS= skips them (a pystemd wheel).
APT_PACKAGES       ?= python3 python3-venv libgomp1
PYSTEMD_BUILD_DEPS ?= gcc python3-dev libsystemd-dev pkg-config
UNITS := lexi-maintd.service lexi-maintd.socket lexi-batch@.service lexi-batch@.timer lexi-batch.slice
UNITS += lexi-notify@.service
LEXI  := $(PREFIX)/venv/bin/lexi-maint
# systemd/*.in and packaging/*.in name the paths as @PREFIX@ and @CONFDIR@
FILL_PATHS := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@CONFDIR@|$(CONFDIR)|g'
# the shipped example names the default paths; the installed copy names the chosen ones
FILL_CONFIG := sed -e 's|/opt/lexi-maint/|$(PREFIX)/|g' -e 's|/etc/lexi-maint/|$(CONFDIR)/|g'
# `lexi-maint status --json` of the installed program against the installed configuration
DAEMON_STATUS := LEXI_MAINT_CONFIG=$(CONFDIR)/lexi-maint.toml $(LEXI) status --json
# true when that answer ($$status) shows no current run and nothing queued
DAEMON_IDLE := { echo "$$status" | grep -q '"current": null' && \
	echo "$$status" | grep -Eq '"queued": 0([^0-9]|$$)'; }

.PHONY: help venv demo test lint typecheck unit integration vm bench-memory bench-chunk bench-graph clean \
	install uninstall uninstall-files install-catalog

help:
	@echo "make demo          run the cao_import job on samples/ (embedded defaults, no services)"
	@echo "make test          install test dependencies, lint, type-check, run every test tier"
	@echo "make bench-memory  peak memory at 49 and 490 documents (embedded and LLM) and a 1,000-page PDF"
	@echo "make bench-chunk   structure-aware splitter and embedded analyzer vs a plain fixed-size split"
	@echo "make bench-systemd (VM) lexi-maint's own overhead around a batch: service stop to job, job to restore"
	@echo "make bench-graph   graph import rows/s: batched UNWIND vs one statement per row"
	@echo "make bench-graph-start  hung FalkorDB starts: the shipped command line vs FalkorDB's default"
	@echo "make bench-llm     LLM stages vs the test server: per-chunk vs batched analysis, bound, real time"
	@echo "make bench-llm-real  the batched case at the unscaled latency (7 min): checks bench-llm's real time"
	@echo "make bench-llm-calls  CPU of one model call: the HTTP client alone vs lexi-maint's whole call path"
	@echo "make bench-plan    the memory plan's need for a batch vs the PSS the batch really held"
	@echo "make bench-availability  (VM) lexi.service during a batch: quiesce stop vs shrink"
	@echo "make bench-quality recall/precision of headings, entities, references on tests/gold"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "lexi-maint needs Python >= 3.11 (found: $$($(PYTHON) --version))"; exit 2; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "install python3-venv first: sudo apt-get install python3-venv"; exit 2; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(DEMO) run cao_import
	@echo
	@echo "== documents in the graph"
	$(DEMO) graph query 'MATCH (d:Document) RETURN d.title AS title, d.pages AS pages ORDER BY title'
	@echo "== chunks per document"
	$(DEMO) graph query 'MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) RETURN d.title AS title, count(c) AS chunks ORDER BY chunks DESC'
	@echo "== most-mentioned terms"
	$(DEMO) graph query 'MATCH (:Chunk)-[:MENTIONS]->(t:Term) RETURN t.name AS term, count(*) AS mentions ORDER BY mentions DESC, term LIMIT 10'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q -m integration tests/integration

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider tests

bench-memory: $(STAMP)
	$(BIN)/python -m bench.memory

bench-chunk: $(STAMP)
	$(BIN)/python -m bench.chunking

bench-systemd: $(STAMP)
	$(BIN)/python -m bench.lifecycle

.PHONY: bench-availability
bench-availability: $(STAMP)
	$(BIN)/python -m bench.availability

bench-graph: $(STAMP)
	$(BIN)/python -m bench.graph

.PHONY: bench-graph-start
bench-graph-start: $(STAMP)
	$(BIN)/python -m bench.graph_start

.PHONY: bench-llm bench-llm-real bench-llm-calls bench-plan
bench-llm: $(STAMP)
	$(BIN)/python -m bench.llm

bench-llm-real: $(STAMP)
	$(BIN)/python -m bench.llm --real-time

bench-llm-calls: $(STAMP)
	$(BIN)/python -m bench.llm_calls

bench-plan: $(STAMP)
	$(BIN)/python -m bench.plan

# `make install`: first install and upgrade alike (idempotent). Each step is a target of its
# own, run in this order; a new file to install is one more line in its step.
INSTALL_STEPS := install-check-idle install-packages install-venv install-units install-config \
	install-bin install-docs install-users install-enable install-restart
.PHONY: $(INSTALL_STEPS)
.NOTPARALLEL: install

install: $(INSTALL_STEPS)
	@echo "installed in $(PREFIX); the configuration is $(CONFDIR)/lexi-maint.toml"

install-check-idle:
	@[ "$$(id -u)" = 0 ] || { echo "make install must run as root"; exit 2; }
	@command -v systemctl >/dev/null || { echo "make install needs a systemd host"; exit 2; }
	@# an upgrade never swaps the code under a running job: ask the daemon first
	@systemctl is-active -q lexi-maintd.service && [ -x $(LEXI) ] || exit 0; \
	if ! status=$$($(DAEMON_STATUS) 2>&1); then \
	  echo "make install: cannot ask lexi-maintd whether a run is in progress, nothing changed:"; \
	  echo "$$status"; exit 1; fi; \
	$(DAEMON_IDLE) || { \
	  echo "make install: lexi-maintd is in the middle of a run, nothing changed; run"; \
	  echo "make install again when \`lexi-maint status\` says idle:"; echo "$$status"; exit 1; }

install-packages:
	@command -v apt-get >/dev/null || { echo "no apt-get: install $(APT_PACKAGES)" \
	  "$(PYSTEMD_BUILD_DEPS) with the system's package manager"; exit 0; }; \
	wanted="$(APT_PACKAGES)"; \
	$(PREFIX)/venv/bin/python -c 'import pystemd' 2>/dev/null || wanted="$$wanted $(PYSTEMD_BUILD_DEPS)"; \
	missing=; for pkg in $$wanted; do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' $$pkg 2>/dev/null | grep -q '^ii' || missing="$$missing $$pkg"; \
	done; \
	[ -n "$$missing" ] || { echo "Debian packages: all present ($$wanted)"; exit 0; }; \
	echo "Debian packages: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then \
	  echo "Debian packages: no package lists yet: apt-get update"; apt-get update -q; fi; \
	apt-get install -y -q --no-install-recommends $$missing || \
	  { echo "Debian packages: install failed, retrying after apt-get update"; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; }

install-venv:
	[ -x $(PREFIX)/venv/bin/python ] || python3 -m venv $(PREFIX)/venv
	$(PREFIX)/venv/bin/pip install -q $(PIP_OPTS) '.[systemd,metrics]'
	install -m 0644 README.md $(PREFIX)/README.md

install-units:
	install -d -m 0755 $(UNITDIR)
	for unit in $(UNITS); do \
	  $(FILL_PATHS) systemd/$$unit.in > $(UNITDIR)/.$$unit.new && chmod 0644 $(UNITDIR)/.$$unit.new && \
	  mv $(UNITDIR)/.$$unit.new $(UNITDIR)/$$unit || exit 1; \
	done

# An existing configuration is never overwritten. 0644: the job unit reads it as its user
# (lexi-batch); it holds no secret (keys and passwords live in their own 0600 files).
install-config:
	install -d -m 0755 $(CONFDIR)
	[ -e $(CONFDIR)/lexi-maint.toml ] || { $(FILL_CONFIG) config/lexi-maint.toml > $(CONFDIR)/.lexi-maint.toml.new && \
	  chmod 0644 $(CONFDIR)/.lexi-maint.toml.new && mv $(CONFDIR)/.lexi-maint.toml.new $(CONFDIR)/lexi-maint.toml; }

install-bin:
	install -d -m 0755 $(BINDIR)
	$(FILL_PATHS) packaging/lexi-maint.in > $(BINDIR)/.lexi-maint.new
	chmod 0755 $(BINDIR)/.lexi-maint.new && mv $(BINDIR)/.lexi-maint.new $(BINDIR)/lexi-maint

# the journal's message catalog (its Support: link names PREFIX), the man page and bash
# completion
install-catalog:
	install -d -m 0755 $(CATALOGDIR)
	$(FILL_PATHS) systemd/lexi-maint.catalog > $(CATALOGDIR)/.lexi-maint.catalog.new
	chmod 0644 $(CATALOGDIR)/.lexi-maint.catalog.new
	mv $(CATALOGDIR)/.lexi-maint.catalog.new $(CATALOGDIR)/lexi-maint.catalog

install-docs: install-catalog
	journalctl --update-catalog
	install -d -m 0755 $(MANDIR)/man1 $(COMPLETIONDIR)
	$(PREFIX)/venv/bin/python -m lexi_maint.cli.manpage man > $(MANDIR)/man1/lexi-maint.1
	$(PREFIX)/venv/bin/python -m lexi_maint.cli.manpage bash > $(COMPLETIONDIR)/lexi-maint

# The accounts, and the pipeline's state directory: root's until the daemon hands it to a
# job's user before a run; an existing one is left as it is (it may be a job user's now).
install-users:
	install -d -m 0755 $(SYSUSERSDIR)
	install -m 0644 packaging/lexi-maint.sysusers $(SYSUSERSDIR)/lexi-maint.conf
	systemd-sysusers $(SYSUSERSDIR)/lexi-maint.conf
	[ -d $(STATEDIR) ] || install -d -m 0700 $(STATEDIR)

install-enable:
	systemctl daemon-reload
	systemctl enable -q lexi-maintd.socket lexi-maintd.service

# An idle daemon is restarted onto the new code; one that took a run since the first check
# keeps running (the old code, until `systemctl restart lexi-maintd` after the run).
install-restart:
	@systemctl is-active -q lexi-maintd.service || \
	  { echo "lexi-maintd is not running (start it: systemctl start lexi-maintd)"; exit 0; }; \
	status=$$($(DAEMON_STATUS) 2>&1); \
	if $(DAEMON_IDLE); then systemctl restart lexi-maintd.service && \
	  echo "upgrade: lexi-maintd was idle and has been restarted on the new code"; \
	else echo "upgrade: lexi-maintd took a run meanwhile and was NOT restarted; after the run:" \
	  "systemctl restart lexi-maintd"; echo "$$status"; fi

# Reverses install; keeps $(CONFDIR), $(STATEDIR) and /var/lib/lexi-maintd
# (configuration, ledger, records) and the accounts lexi-batch and lexi-maint.
# `systemctl disable` takes no globs: the timer instances are listed one by one.
uninstall:
	@[ "$$(id -u)" = 0 ] || { echo "make uninstall must run as root"; exit 2; }
	@timers=$$( { systemctl list-units --all --plain --no-legend 'lexi-batch@*.timer'; \
	  systemctl list-unit-files --no-legend 'lexi-batch@*.timer'; } | awk '{print $$1}'; \
	  find $(UNITDIR) -name 'lexi-batch@?*.timer' -printf '%f\n' 2>/dev/null); \
	timers=$$(printf '%s\n' $$timers | grep -v '^lexi-batch@\.timer$$' | sort -u); \
	for timer in $$timers; do echo "disabling $$timer"; systemctl disable --now -q "$$timer"; done
	-systemctl disable --now -q lexi-maintd.service lexi-maintd.socket
	$(MAKE) -s uninstall-files
	-journalctl --update-catalog
	systemctl daemon-reload
	@echo "removed; kept $(CONFDIR), $(STATEDIR), /var/lib/lexi-maintd and the users"

# What install wrote, file by file: never `rm -rf $(PREFIX)`, which may hold CONFDIR,
# STATEDIR or a wheelhouse of the operator's (PREFIX=/srv/lexi-maint CONFDIR=/srv/lexi-maint/etc).
uninstall-files:
	for unit in $(UNITS); do rm -f $(UNITDIR)/$$unit; done
	rm -f $(BINDIR)/lexi-maint $(SYSUSERSDIR)/lexi-maint.conf
	rm -f $(CATALOGDIR)/lexi-maint.catalog $(MANDIR)/man1/lexi-maint.1 $(COMPLETIONDIR)/lexi-maint
	rm -rf $(PREFIX)/venv
	rm -f $(PREFIX)/README.md
	rmdir $(PREFIX) 2>/dev/null || true  # only when nothing else is in it

clean:
	rm -rf $(VENV) .demo-state .mypy_cache .ruff_cache .pytest_cache

.PHONY: bench-quality
bench-quality: $(STAMP)
	$(BIN)/python -m bench.quality
