# optout-bridge: every set-up step lives here so a fresh machine needs only `make run` / `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 3000
SYSTEMS ?= local/systems.json
ARGS   ?=
STAMP  := $(VENV)/.installed
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: venv test unit lint run bench e2e-deps clean

venv: $(STAMP)

$(STAMP): layers/common/requirements.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

# Browser tests need Debian's chromium and the IAB GPP reference decoder from npm.
e2e-deps:
	bash scripts/install-browser-deps.sh

test: venv e2e-deps
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/cfn-lint template.yaml

run: venv
	$(PY) -m local --port $(PORT) --systems $(SYSTEMS) $(ARGS)

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
