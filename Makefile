# onerec — set-up, demo and tests. Everything installs into ./.venv with pip (not uv:
# uv ignores the CPU-only torch pin in the `cpu` extra).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= cpu,embed,serve,dev

.PHONY: venv demo test lint typecheck bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

## make demo: install, then run the whole pipeline on the embedded KuaiRand data.
demo: venv
	$(BIN)/onerec demo

## make test: install, then run the test suite (pytest exit 5 = "no tests" counts as failure).
test: venv
	@$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
