# One entry point for people and CI. `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo up test unit integration lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py streams/_otlp_scan.pyx streams/_utf8_column.pyx streams/_pack_columns.pyx streams/_service_graph.pyx ingest/_otlp_split.pyx core/_murmur2.pyx core/protowire.pxd core/slots.pxd requirements.lock deploy/local/requirements-services.txt tests/clients/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes --no-deps -r deploy/local/requirements-services.txt
	# Also builds the compiled OTLP pass (streams/_otlp_scan.pyx) in place; rerun after editing it.
	$(BIN)/pip install -q -c requirements.lock -e ".[local,dev]"
	$(BIN)/python -c "import streams.otlp_scan as s; assert s.ENABLED, 'compiled OTLP scan not built'"
	$(BIN)/python -c "import streams.service_graph as g; assert g.COMPILED, 'compiled graph not built'"
	# Real npm clients the integration tests send with (tests/clients/package.json, locked);
	# only the tests need them, so a machine without npm can still run the demo.
	if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error; \
	else \
	  echo "npm not found: Node client tests will fail (make system-deps installs it)"; \
	fi
	touch $(STAMP)

# Start broker + ClickHouse + ingest + streams + sink, send a demo load, show status; Ctrl-C stops.
demo: setup
	$(BIN)/tracehouse up --demo

up: setup
	$(BIN)/tracehouse up

# System packages the tests use (Chromium for the UI tests, docker-compose to validate the
# compose file); installed with apt when missing and running as root.
system-deps:
	bash deploy/local/system-deps.sh

test: setup system-deps
	$(BIN)/pytest -n 2 --dist loadfile

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy core tracehouse ingest streams sinks schemas query deploy tests bench

# Quick versions of every benchmark (a few minutes in all); full runs: bench/README.md.
bench: setup
	$(BIN)/python -m bench.ingest --seconds 3
	$(BIN)/python -m bench.streams --messages 50
	$(BIN)/python -m bench.span_view --rounds 5
	$(BIN)/python -m bench.pack --rounds 5
	$(BIN)/python -m bench.streams_gc --spans 300000
	$(BIN)/python -m bench.compression --traces 500
	$(BIN)/python -m bench.sink --spans 50000
	$(BIN)/python -m bench.query --spans 100000 --lookups 50 --searches 20
	$(BIN)/python -m bench.e2e --spans 50000 --no-progress

clean:
	rm -rf .tracehouse $(VENV)
