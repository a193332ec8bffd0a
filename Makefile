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

.PHONY: venv test unit lint run bench e2e-deps banner clean

venv: $(STAMP)

$(STAMP): layers/common/requirements.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

# Browser tests need Debian's chromium and the npm packages of web/tests (IAB's GPP reference
# implementation, axe-core); the banner build needs terser from the same lock file.
e2e-deps:
	bash scripts/install-browser-deps.sh

WEB_DEPS := web/tests/node_modules/.package-lock.json
$(WEB_DEPS): web/tests/package.json web/tests/package-lock.json
	cd web/tests && npm ci --silent --no-audit --no-fund

# What a site embeds: web/dist/banner.min.js and its SRI hash (generated, git-ignored).
banner: web/dist/banner.min.js
web/dist/banner.min.js: web/banner.js scripts/build-banner.mjs $(WEB_DEPS)
	node scripts/build-banner.mjs

test: venv e2e-deps banner
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/cfn-lint template.yaml

run: venv banner
	$(PY) -m local --port $(PORT) --systems $(SYSTEMS) $(ARGS)

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts web/dist
