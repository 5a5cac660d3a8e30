# `make results` regenerates every figure and number; `make test` runs the test suite.
# Both create (or reuse) the virtual environment .venv with the Keras backend chosen by
# KERAS_BACKEND (tensorflow by default; jax or torch install their own requirements file too):
#     KERAS_BACKEND=jax make results
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=
KERAS_BACKEND ?= tensorflow
REQUIREMENTS_tensorflow := requirements.txt
REQUIREMENTS_jax := requirements-jax.txt
REQUIREMENTS_torch := requirements-torch.txt
REQUIREMENTS := $(REQUIREMENTS_$(KERAS_BACKEND))
ifeq ($(REQUIREMENTS),)
$(error KERAS_BACKEND must be tensorflow, jax or torch, not "$(KERAS_BACKEND)")
endif

export KERAS_BACKEND
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: results quick test benchmark clean-venv

$(VENV)/.installed-$(KERAS_BACKEND): $(REQUIREMENTS) requirements-base.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(REQUIREMENTS)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

results: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m aae reproduce $(ARGS)

quick: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m aae reproduce --quick $(ARGS)

test: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m pytest $(ARGS)

benchmark: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) benchmarks/training_speed.py $(ARGS)
	$(PY) benchmarks/aae_speed.py

clean-venv:
	rm -rf $(VENV)
