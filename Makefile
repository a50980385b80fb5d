# lexi-maint: `make demo` runs the main job on samples/; `make test` runs every test tier.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := $(BIN)/lexi-maint --config config/demo.toml

PREFIX  ?= /opt/lexi-maint
UNITDIR ?= /etc/systemd/system
CATALOGDIR ?= /usr/lib/systemd/catalog
MANDIR ?= /usr/local/share/man
COMPLETIONDIR ?= /usr/share/bash-completion/completions
CONFDIR ?= /etc/lexi-maint
# e.g. PIP_OPTS="--no-index --find-links /opt/lexi-maint/wheels" for an offline install
PIP_OPTS ?=
UNITS := lexi-maintd.service lexi-maintd.socket lexi-batch@.service lexi-batch@.timer lexi-batch.slice
UNITS += lexi-notify@.service

.PHONY: help venv demo test lint typecheck unit integration vm bench-memory bench-chunk bench-graph clean \
	install uninstall

help:
	@echo "make demo          run the cao_import job on samples/ (embedded defaults, no services)"
	@echo "make test          install test dependencies, lint, type-check, run every test tier"
	@echo "make bench-memory  peak memory at 49 and 490 documents (embedded and LLM) and a 1,000-page PDF"
	@echo "make bench-graph   graph import rows/s: batched UNWIND vs one statement per row"
	@echo "make bench-llm     LLM stages vs the test server: per-chunk vs batched analysis, bound, real time"
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

.PHONY: bench-llm
bench-llm: $(STAMP)
	$(BIN)/python -m bench.llm

# Installs the package into $(PREFIX)/venv, the units into $(UNITDIR) and the example
# configuration into $(CONFDIR) (an existing configuration is never overwritten).
install:
	@[ "$$(id -u)" = 0 ] || { echo "make install must run as root"; exit 2; }
	@command -v systemctl >/dev/null || { echo "make install needs a systemd host"; exit 2; }
	@# the embedded FalkorDB module links against the OpenMP runtime
	ldconfig -p | grep -q libgomp.so.1 || apt-get install -y -q libgomp1
	[ -x $(PREFIX)/venv/bin/python ] || $(PYTHON) -m venv $(PREFIX)/venv
	$(PREFIX)/venv/bin/pip install -q $(PIP_OPTS) '.[systemd]'
	install -m 0644 README.md $(PREFIX)/README.md
	install -d -m 0755 $(UNITDIR)
	for unit in $(UNITS); do install -m 0644 systemd/$$unit $(UNITDIR)/$$unit; done
	install -d -m 0755 $(CONFDIR)
	[ -e $(CONFDIR)/lexi-maint.toml ] || install -m 0640 config/lexi-maint.toml $(CONFDIR)/lexi-maint.toml
	getent group lexi-maint >/dev/null || groupadd --system lexi-maint
	install -D -m 0644 systemd/lexi-maint.catalog $(CATALOGDIR)/lexi-maint.catalog
	journalctl --update-catalog
	install -d -m 0755 $(MANDIR)/man1 $(COMPLETIONDIR)
	$(PREFIX)/venv/bin/python -m lexi_maint.manpage man > $(MANDIR)/man1/lexi-maint.1
	$(PREFIX)/venv/bin/python -m lexi_maint.manpage bash > $(COMPLETIONDIR)/lexi-maint
	systemctl daemon-reload
	systemctl enable lexi-maintd.socket lexi-maintd.service
	@echo "installed; edit $(CONFDIR)/lexi-maint.toml, then: systemctl start lexi-maintd"

# Reverses install; keeps $(CONFDIR), /var/lib/lexi-maint and /var/lib/lexi-maintd (configuration, ledger, records).
uninstall:
	@[ "$$(id -u)" = 0 ] || { echo "make uninstall must run as root"; exit 2; }
	-systemctl disable --now 'lexi-batch@*.timer' lexi-maintd.service lexi-maintd.socket
	for unit in $(UNITS); do rm -f $(UNITDIR)/$$unit; done
	rm -f $(CATALOGDIR)/lexi-maint.catalog $(MANDIR)/man1/lexi-maint.1 $(COMPLETIONDIR)/lexi-maint
	-journalctl --update-catalog
	systemctl daemon-reload
	rm -rf $(PREFIX)
	@echo "removed; kept $(CONFDIR), /var/lib/lexi-maint and /var/lib/lexi-maintd"

clean:
	rm -rf $(VENV) .demo-state .mypy_cache .ruff_cache .pytest_cache

.PHONY: bench-quality
bench-quality: $(STAMP)
	$(BIN)/python -m bench.quality
