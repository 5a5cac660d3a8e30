# `make results` regenerates every figure and number; `make test` runs the test suite.
# Both create (or reuse) the virtual environment .venv from requirements.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: results quick test benchmark clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

results: $(VENV)/.installed
	$(PY) -m aae reproduce $(ARGS)

quick: $(VENV)/.installed
	$(PY) -m aae reproduce --quick $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest $(ARGS)

benchmark: $(VENV)/.installed
	$(PY) benchmarks/training_speed.py $(ARGS)
	$(PY) benchmarks/aae_speed.py

clean-venv:
	rm -rf $(VENV)
