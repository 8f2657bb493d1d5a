# smshooks: `make run` serves the whole stack locally, `make test` runs the suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install kafka run demo test test-slow test-all bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# the pinned Apache Kafka (apache-kafka/pom.xml) resolved by Maven into ~/.cache/smshooks (or $$SMSHOOKS_KAFKA_HOME), once
kafka: install
	scripts/ensure-java
	$(BIN)/python -m smshooks.broker

run: install kafka
	$(BIN)/smshooks run

demo: install
	$(BIN)/smshooks demo --url http://127.0.0.1:8000

test: install kafka
	scripts/ensure-postgres
	$(BIN)/python -m pytest -m "not slow" -n 3 --dist loadfile -rfExX -p no:cacheprovider

test-slow: install kafka
	scripts/ensure-postgres
	$(BIN)/python -m pytest -m slow -rfExX -p no:cacheprovider

test-all: install kafka
	scripts/ensure-postgres
	$(BIN)/python -m pytest -rfExX -p no:cacheprovider

bench: install kafka
	$(BIN)/python bench/receiver.py
	$(BIN)/python bench/processors.py
	$(BIN)/python bench/end_to_end.py
	$(BIN)/python bench/backlog.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/spool.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data artifacts .pytest_cache
