# Two entry points: `make demo` regenerates the FuseMax paper's attention study
# into results/, `make test` runs the test suite. Both create .venv on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fusemax reproduce --out results

test: $(STAMP)
	$(BIN)/python -m pytest -q tests einsum_cascades fusemax

clean:
	rm -rf $(VENV) results build *.egg-info
