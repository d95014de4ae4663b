# Two commands on a fresh machine:
#   make demo   the whole flow on a local Kafka broker it starts itself
#   make test   the test suite, against a real Kafka broker the run starts
# Both create the virtual environment and fetch Kafka's jars (Maven Central) first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-samples test-faults fuzz lint kafka-jars bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

kafka-jars: $(STAMP)
	$(BIN)/sgb kafka fetch

demo: kafka-jars
	$(BIN)/sgb demo

test: lint kafka-jars
	./tools/install-test-deps.sh
	$(BIN)/sgb schemas check
	$(BIN)/python -m pytest --ignore=tests/samples

# The connectors on public sample files and returns, read in place from ../shared/samples (never
# copied into the repository); CI runs it after `make test`. It fails, never skips, without them.
test-samples: kafka-jars
	$(BIN)/python -m pytest tests/samples

# Only the fault tests on a 3-node cluster (also part of `make test`), with their FAULT lines.
test-faults: kafka-jars
	$(BIN)/python -m pytest tests/fault -s

# Hostile input, longer than the bounded run inside `make test`: the hypothesis property tests
# with FUZZ_EXAMPLES examples per target (random seed), then each atheris harness for
# FUZZ_SECONDS (a crashing input is saved under $(FUZZ_ARTIFACTS)). Counts per target are
# printed and written to $(FUZZ_SUMMARY).
FUZZ_EXAMPLES ?= 5000
FUZZ_SECONDS  ?= 60
FUZZ_SUMMARY  ?= /tmp/sgb-fuzz-summary.json
FUZZ_ARTIFACTS ?= /tmp/sgb-fuzz
ATHERIS_FILES := ctf cin police-json police-csv consent family-help fhir hl7 ssda903

fuzz: $(STAMP)
	SGB_FUZZ_PROFILE=long SGB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SGB_FUZZ_SUMMARY=$(FUZZ_SUMMARY) \
		$(BIN)/python -m pytest tests/fuzz -m "not kafka" -p no:cacheprovider
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	mkdir -p $(FUZZ_ARTIFACTS)
	$(BIN)/python tests/fuzz/atheris_avro.py -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_ARTIFACTS)/avro-
	for target in $(ATHERIS_FILES); do \
		$(BIN)/python tests/fuzz/atheris_files.py $$target -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=$(FUZZ_ARTIFACTS)/$$target- || exit 1; \
	done
	$(BIN)/python tests/fuzz/atheris_webhook.py -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_ARTIFACTS)/webhook-

# Lint and the floors: ruff (rules and format), mypy --strict on the packages, and the
# import contracts in .importlinter (a module imports only its own floor or those below).
LINTED := schemas broker consent connectors sgb tests bench
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy schemas broker consent connectors sgb
	$(BIN)/lint-imports

bench: kafka-jars
	$(BIN)/python bench/serde.py
	$(BIN)/python bench/connectors_files.py
	$(BIN)/python bench/connectors_la.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/filter.py
	$(BIN)/python bench/hub.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/security.py
	$(BIN)/python bench/fieldcrypt.py

clean:
	rm -rf $(VENV) .pytest_cache
