# The two commands for a fresh machine (each does all the set-up it needs):
#   make run    set up, fetch the assets, execute every notebook (profile cpu) into runs/<timestamp>/
#   make test   set up, fetch the assets, run the test suite (notebooks in the smoke profile)
PROFILE ?= cpu
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast setup assets lint hooks clean-runs

run: setup assets
	@start=$$(date +%s); $(VENV)/bin/acg2vec-lab run --profile $(PROFILE); code=$$?; \
	echo "make run: $$(( $$(date +%s) - start )) s"; exit $$code

test: setup assets lint
	@start=$$(date +%s); $(PY) -m pytest $(PYTEST_ARGS); code=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s"; exit $$code

# everything but the notebook executions: the tier to run while editing
test-fast: setup assets lint
	@$(PY) -m pytest -m "not notebook" $(PYTEST_ARGS)

# ruff over the package, tests, benchmarks and the notebooks' text sources; notebooks in sync and clean
lint: setup
	@$(VENV)/bin/ruff check acg2vec_lab tests benchmarks notebooks
	@$(PY) -m acg2vec_lab.dev.sync --check

# run `make lint` before every commit (.githooks/pre-commit); undo with `git config --unset core.hooksPath`
hooks:
	@git config core.hooksPath .githooks && echo "pre-commit hook on: .githooks/pre-commit runs the lint tier"

setup:
	@bash scripts/setup.sh
	@bash scripts/setup_web.sh

assets: setup
	@$(VENV)/bin/acg2vec-lab assets fetch --all

clean-runs:
	rm -rf runs/
