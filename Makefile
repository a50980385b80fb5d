# lexi-maint: `make demo` runs the main job on samples/; `make test` runs every test tier.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := $(BIN)/lexi-maint --config config/demo.toml

.PHONY: help venv demo test lint typecheck unit integration vm bench-memory clean

help:
	@echo "make demo          run the cao_import job on samples/ (embedded defaults, no services)"
	@echo "make test          install test dependencies, lint, type-check, run every test tier"
	@echo "make bench-memory  peak memory at 49 and 490 documents and for a 1,000-page PDF"

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

clean:
	rm -rf $(VENV) .demo-state .mypy_cache .ruff_cache .pytest_cache
