# optout-bridge: every set-up step lives here so a fresh machine needs only `make run` / `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 3000
SYSTEMS ?= local/systems.json
ARGS   ?=
STAMP  := $(VENV)/.installed
# AWS's own tools pin their own boto3: each gets its own virtualenv (requirements/*.txt).
SAM_VENV     := .venv-sam
SAM          := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
# `sam build` needs the functions' runtime (python3.13) on PATH; it builds pure-Python code
# and arm64 wheels without Docker. Use a python3.13 already on PATH, else pyenv's 3.13.
PY313_BIN := $(shell python3.13 -c 'import sys, os; print(os.path.dirname(sys.executable))' 2>/dev/null \
	|| { p=$$(pyenv prefix 3.13 2>/dev/null) && echo "$$p/bin"; })

.PHONY: venv test test-py313 unit lint run bench bench-quick soak e2e-deps banner clean template build deploy deploy-check sam-venv checkov-venv

venv: $(STAMP)

$(STAMP): layers/common/requirements.txt requirements/dev.txt requirements/cli.txt requirements/bootstrap.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/bootstrap.txt
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@# The operator CLI `optout` (cli/optout_cli), editable; its pinned deps came with dev.txt,
	@# and so did the setuptools that builds it (cli.txt; no isolated build fetching an unpinned one).
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $(STAMP)

sam-venv: $(SAM_VENV)/.installed
$(SAM_VENV)/.installed: requirements/sam.txt requirements/bootstrap.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements/bootstrap.txt
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements/sam.txt
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed
$(CHECKOV_VENV)/.installed: requirements/checkov.txt requirements/bootstrap.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/bootstrap.txt
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/checkov.txt
	touch $@

# Browser tests need Debian's chromium and the npm packages of web/tests (IAB's GPP reference
# implementation, axe-core); the banner build needs terser from the same lock file, and the
# Segment connector's tests Segment's Public API SDK.
e2e-deps:
	bash scripts/install-browser-deps.sh

WEB_DEPS := web/tests/node_modules/.package-lock.json
# A worktree whose web/tests/node_modules links to another checkout's: `npm ci` would empty
# that checkout's copy through the link (its files are older than a fresh checkout's lock file).
$(WEB_DEPS): web/tests/package.json web/tests/package-lock.json
	@! test -L web/tests/node_modules || { echo "web/tests/node_modules is a symlink: run 'npm ci' where it points, or touch $@" >&2; exit 1; }
	cd web/tests && npm ci --silent --no-audit --no-fund

# What a site embeds: web/dist/banner.min.js and its SRI hash (generated, git-ignored).
banner: web/dist/banner.min.js
web/dist/banner.min.js: web/banner.js scripts/build-banner.mjs $(WEB_DEPS)
	node scripts/build-banner.mjs

# TEST_WORKERS=0 runs the suite in one process (pytest-xdist's -n 0).
TEST_WORKERS ?= auto
test: venv e2e-deps banner
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

# tests/unit/connectors/test_segment_sdk.py runs Segment's own SDK under node (web/tests).
unit: venv $(WEB_DEPS)
	$(PY) -m pytest tests/unit

# The unit tests under the functions' runtime, python3.13 (found as `make build` finds it), in
# a virtualenv of their own from the same pins (dev.txt takes the layer's): production code
# that behaves differently on 3.13 fails here, not on Lambda (review s21 py313).
# PY313_TESTS narrows the run, e.g. PY313_TESTS=tests/unit/test_evidence.py.
PY313_VENV  := .venv-py313
PY313_TESTS ?= tests/unit
test-py313: $(PY313_VENV)/.installed $(WEB_DEPS)
	$(PY313_VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PY313_TESTS)

$(PY313_VENV)/.installed: layers/common/requirements.txt requirements/dev.txt requirements/cli.txt requirements/bootstrap.txt pyproject.toml
	@test -n "$(PY313_BIN)" || { echo "make test-py313 needs python3.13 (pyenv install 3.13, or put it on PATH)"; exit 1; }
	test -x $(PY313_VENV)/bin/python || $(PY313_BIN)/python3.13 -m venv $(PY313_VENV)
	$(PY313_VENV)/bin/python -m pip install --quiet -r requirements/bootstrap.txt
	$(PY313_VENV)/bin/python -m pip install --quiet -r requirements/dev.txt
	$(PY313_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

# template.yaml's per-system section (from layers/common/config/systems.json) and edge-waf.yaml.
template: venv
	$(PY) scripts/gen_template.py

lint: venv sam-venv checkov-venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) scripts/gen_template.py --check
	$(VENV)/bin/cfn-lint template.yaml edge-waf.yaml
	$(SAM) validate --lint
	$(SAM) validate --lint --template edge-waf.yaml
	$(PY) scripts/translate_template.py artifacts/template.json
	$(CHECKOV) -f artifacts/template.json --framework cloudformation --skip-download --compact --quiet

# A build and a deploy first check that template.yaml is what `make template` writes for the
# production systems file, and that make template accepts that file: a stale template would
# deploy queues and IAM for another set of systems (review s18 operator, M5).
build: venv sam-venv
	$(PY) scripts/gen_template.py --check
	@test -n "$(PY313_BIN)" || { echo "sam build needs python3.13 (pyenv install 3.13, or put it on PATH)"; exit 1; }
	PATH="$(PY313_BIN):$$PATH" $(SAM) build
	@# The layer's layout on Lambda (/opt/python/optout, /opt/config/systems.json): checked here.
	test -f .aws-sam/build/CommonLayer/python/optout/__init__.py
	test -f .aws-sam/build/CommonLayer/config/systems.json
	@# The layer ships exactly the pinned distributions, no test or development package.
	$(PY) scripts/layer_lock.py check .aws-sam/build/CommonLayer

# Needs AWS credentials; samconfig.toml holds the defaults, ARGS adds to them, e.g.
# make deploy ARGS='--parameter-overrides LinkerTrustedPrincipalArn=... OperatorTrustedPrincipalArn=...
#   EnableEdge=true ApiDomainName=... ApiCertificateArn=...' (the list replaces samconfig.toml's)
# It refuses a systems file still holding EDIT-ME placeholders (every job would fail after
# its retries); ALLOW_EDIT_ME=1 deploys one anyway, for a demo stack that sends nowhere.
# It then asks the AWS CLI whether the account leaves Lambda's 100 unreserved executions beside
# the stack's reservations (scripts/check_concurrency.py): short of them, a first deploy rolls
# back after the table, key and secrets exist. SKIP_CONCURRENCY_CHECK=1 skips that look.
ALLOW_EDIT_ME ?=
SKIP_CONCURRENCY_CHECK ?=
deploy: deploy-check build
	$(if $(SKIP_CONCURRENCY_CHECK),,$(PY) scripts/check_concurrency.py $(ARGS))
	$(SAM) deploy $(ARGS)

deploy-check: venv
	$(PY) scripts/gen_template.py --check --deploy$(if $(ALLOW_EDIT_ME), --allow-edit-me)

run: venv banner
	$(PY) -m local --port $(PORT) --systems $(SYSTEMS) $(ARGS)

bench: venv
	$(PY) -m bench

# What CI runs after the tests: the count-only regression guard (AWS calls per capture, WRU
# per opt-out against bench/guard.json), figures in artifacts/bench-quick.json. Never a time.
bench-quick: venv
	$(PY) -m bench --quick --guard --only calls,latency,cold,cost --out artifacts/bench-quick.json

# Vendor faults at volume (docs/reliability.md): SOAK_COUNT opt-outs while every sandbox fails
# 30% of its calls, then one system refusing with 400 and the operator replay; exits 1 on a loss.
SOAK_COUNT ?= 2000
soak: venv
	$(PY) -m soak --count $(SOAK_COUNT)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(PY313_VENV) .pytest_cache .mypy_cache .ruff_cache artifacts .aws-sam web/dist
