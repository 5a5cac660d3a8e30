# `make results` regenerates the notebooks' figures and numbers; `make test` runs the test suite;
# `make lab` opens Jupyter on the notebooks. All create (or reuse) the virtual environment .venv
# with the Keras backend chosen by KERAS_BACKEND (tensorflow by default; jax or torch install their
# own requirements file too), at the exact versions of constraints.txt:
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

.PHONY: results quick test lab benchmark long-results occupancy-seeds parzen-reproduction clean-venv

$(VENV)/.installed-$(KERAS_BACKEND): $(REQUIREMENTS) requirements-base.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(REQUIREMENTS) -c constraints.txt
	touch $@

results: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m aae reproduce $(ARGS)

quick: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m aae reproduce --quick $(ARGS)

test: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m pytest $(ARGS)

# Jupyter on the notebooks, with the kernel of .venv (where `import aae` works).
lab: $(VENV)/.installed-$(KERAS_BACKEND)
	$(VENV)/bin/jupyter lab notebooks/ $(ARGS)

# The AAE paper's settings, trained far longer than `make results` can (about 3 hours on this 2-core CPU;
# JAX was the fastest backend here): the semi-supervised AAE with 100 and 1,000 labels and clustering with 16 and
# 30 clusters, three seeds each, and
# notebook 04's "long" setting (the 8-D Parzen model wider and longer, the Gaussian and supervised 2-D models trained
# further; about 35 minutes of it), then notebook 05 on those 2-D models. The README's paper table and its block of the
# long setting are rebuilt from their metrics.
# Labels: notebook 06's recipe (batch-norm encoder, z of 5, the joint style discriminator, its rates and
# 2 x 500 networks), 20 epochs instead of 3.
LONG_RECIPE := --latent-dim 5 --batch-norm --joint-style --hidden 500 500 --d-hidden 500 500
# Clustering: notebook 06's clustering recipe (batch-norm encoder, z of 5, two separate discriminators, its
# adversary rates and 2 x 500 networks), 20 epochs instead of 3. Each run took 6-10 minutes on this 2-core CPU (JAX).
LONG_CLUSTERS := --latent-dim 5 --batch-norm --hidden 500 500 --d-hidden 500 500 --epochs 20 --d-lr 1e-3 --g-lr 1e-3
long-results: $(VENV)/.installed-$(KERAS_BACKEND)
	for s in 0 1 2; do $(PY) scripts/train_semisupervised.py $(LONG_RECIPE) --name long_100_labels_seed$$s --n-labels 100 --seed $$s --epochs 20 || exit 1; done
	for s in 0 1 2; do $(PY) scripts/train_semisupervised.py $(LONG_RECIPE) --name long_1000_labels_seed$$s --n-labels 1000 --seed $$s --epochs 20 || exit 1; done
	for k in 16 30; do for s in 0 1 2; do $(PY) scripts/train_semisupervised.py $(LONG_CLUSTERS) --name long_$${k}_clusters_seed$$s --n-labels 0 --n-classes $$k --seed $$s || exit 1; done; done
	$(PY) scripts/plot_semisupervised_long.py results/long-semisupervised
	$(PY) -m aae reproduce --only adversarial_autoencoder -p setting=long --output-dir results/long-aae
	$(PY) -m aae reproduce --only latent_occupancy --output-dir results/long-aae
	$(PY) -m aae summary results/long-aae --readme-block long-aae
	$(PY) -m aae summary results --readme-block results

# Notebook 05's answer over seeds: notebooks 01 and 04 again with two more seeds of each 2-D model (their
# occupancy_seeds) into results/occupancy-seeds/, whose metrics hold every seed's numbers, then notebook 05 into
# results/, measuring those seeds beside make results' own (run make results first). `make results` alone trains no
# extra seed (it would take about twice as long); a later `make results` measures the seeds it finds there.
occupancy-seeds: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) -m aae reproduce --only variational_autoencoder -p "occupancy_seeds=[2, 3]" --output-dir results/occupancy-seeds
	$(PY) -m aae reproduce --only adversarial_autoencoder -p "occupancy_seeds=[1, 2]" --output-dir results/occupancy-seeds
	$(PY) -m aae reproduce --only latent_occupancy

# The 8-D Parzen model at the published reproduction's recipe (1,200-unit layers, dropout 0.2 in all three
# networks, prior std 5, Adam 2e-4 for reconstruction and 1e-4 for the adversary, batch 100, 200 epochs; our cosine
# decay): about 40 s per epoch, 2.3 hours per seed, on this 2-core CPU (JAX). Stopped, a run carries on from its
# checkpoint when the command is run again. SEEDS="0" runs one seed.
PARZEN_RECIPE := --epochs 200 --hidden 1200 1200 --d-hidden 1200 1200 --dropout 0.2 --d-dropout 0.2 --prior-scale 5 \
	--lr 2e-4 --d-lr 1e-4 --g-lr 1e-4 --batch-size 100 --eval-every 25 --test
SEEDS ?= 0 1 2
parzen-reproduction: $(VENV)/.installed-$(KERAS_BACKEND)
	for s in $(SEEDS); do $(PY) scripts/tune_parzen_aae.py $(PARZEN_RECIPE) --name reproduction_seed$$s --seed $$s \
		--out results/parzen-reproduction || exit 1; done
	$(PY) -m aae summary results --readme-block results

benchmark: $(VENV)/.installed-$(KERAS_BACKEND)
	$(PY) benchmarks/training_speed.py $(ARGS)
	$(PY) benchmarks/aae_speed.py
	if $(PY) -c "import jax" 2>/dev/null; then KERAS_BACKEND=jax $(PY) benchmarks/scan_speed.py --notebook06; \
	else echo "benchmarks/scan_speed.py skipped: the scanned steps are JAX's (KERAS_BACKEND=jax make benchmark)"; fi

clean-venv:
	rm -rf $(VENV)
