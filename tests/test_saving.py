"""Saving a trained model with its settings, and finding it again (aae.saving)."""
import json

import numpy as np
import pytest

from aae.adversarial import adversarial_autoencoder
from aae.models import mlp_decoder, mlp_encoder
from aae.priors import GaussianPrior, MixturePrior, SwissRollPrior, prior_from_config
from aae.saving import further_seeds, load_codec, save_codec, saved_codecs


@pytest.mark.parametrize("prior", [GaussianPrior(8, scale=2.0), MixturePrior(6, radius=3.0, std=0.3),
                                   SwissRollPrior(radius=5.0, turns=2.0, noise=0.1, n_segments=4)])
def test_prior_config_round_trip(prior):
    again = prior_from_config(json.loads(json.dumps(prior.get_config())))
    assert type(again) is type(prior) and again.get_config() == prior.get_config()
    np.testing.assert_array_equal(again.sample(50, seed=3), prior.sample(50, seed=3))


def test_unknown_prior_config():
    with pytest.raises(ValueError, match="unknown prior 'Cauchy'"):
        prior_from_config({"class": "Cauchy"})


def test_save_and_load_an_aae_with_its_prior(tmp_path):
    prior = MixturePrior(10, radius=3.5, std=0.4)
    model = adversarial_autoencoder(prior, (16,), (16,), supervised=True, seed=0)
    path = save_codec(tmp_path, "aae_supervised", model.code_encoder(), model.decoder, prior=prior,
                      posterior="deterministic", notebook="notebooks/04_adversarial_autoencoder.ipynb")
    saved = json.loads(path.read_text())
    assert saved["latent_dim"] == 2 and saved["prior"] == {"class": "MixturePrior", "n_components": 10,
                                                            "radius": 3.5, "std": 0.4}
    codec = load_codec(tmp_path, "aae_supervised")
    assert codec.latent_dim == 2 and codec.prior.get_config() == prior.get_config()
    x = np.random.default_rng(0).uniform(size=(5, 784)).astype("float32")
    z = prior.sample(5, seed=0)
    np.testing.assert_allclose(np.asarray(codec.encoder(x)), np.asarray(model.encoder(x)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(codec.decoder(z)), np.asarray(model.decoder(z)), rtol=1e-6)


def test_a_vae_encoder_keeps_both_heads(tmp_path):
    enc, dec = mlp_encoder(3, [8]), mlp_decoder(3, [8])
    save_codec(tmp_path, "vae", enc, dec, prior=GaussianPrior(3), posterior="gaussian")
    codec = load_codec(tmp_path, "vae")
    assert len(codec.encoder.outputs) == 2 and codec.settings["posterior"] == "gaussian"


def test_saved_codecs_filters_by_code_size(tmp_path):
    for name, dim, notebook in (("a2", 2, "04"), ("b8", 8, "04"), ("c2", 2, "01")):
        save_codec(tmp_path, name, mlp_encoder(dim, []), mlp_decoder(dim, []), prior=GaussianPrior(dim),
                   notebook=notebook)
    (tmp_path / "models" / "digit_classifier.json").write_text("{}")  # not a saved codec
    (tmp_path / "models" / "broken.json").write_text("{not json")
    assert saved_codecs(tmp_path) == ["c2", "a2", "b8"]  # notebook 01's first
    assert saved_codecs(tmp_path, latent_dim=2) == ["c2", "a2"]
    assert saved_codecs(tmp_path / "nowhere") == []


def test_further_seeds_come_from_another_folder_with_the_same_settings(tmp_path):
    main, seeds = tmp_path / "results", tmp_path / "results" / "occupancy-seeds"

    def save(folder, name, hidden=(8,)):
        save_codec(folder, name, mlp_encoder(2, list(hidden)), mlp_decoder(2, list(hidden)), prior=GaussianPrior(2),
                   hidden=list(hidden), notebook="notebooks/04_adversarial_autoencoder.ipynb")

    for name in ("aae_gaussian", "vae", "vae_seed2"):
        save(main, name)
    for name in ("aae_gaussian", "aae_gaussian_seed1", "vae_seed2", "vae_seed3", "other_seed1"):
        save(seeds, name)  # the seed-0 copy, a seed the main folder has, a model it lacks: not taken
    save(seeds, "aae_gaussian_seed2", hidden=(16,))  # trained with other layers: left out, saying why
    found, left_out = further_seeds(main, saved_codecs(main), seeds)
    assert found == {"aae_gaussian_seed1": seeds, "vae_seed3": seeds}
    assert list(left_out) == ["aae_gaussian_seed2"] and "hidden" in left_out["aae_gaussian_seed2"]
    assert load_codec(found["vae_seed3"], "vae_seed3").latent_dim == 2
    assert further_seeds(main, saved_codecs(main), tmp_path / "nowhere") == ({}, {})


def test_missing_model_names_what_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model 'vae' is not saved .*vae\.json.*vae_encoder\.keras"):
        load_codec(tmp_path, "vae", source="notebooks/01_variational_autoencoder.ipynb")
    save_codec(tmp_path, "vae", mlp_encoder(2, []), mlp_decoder(2, []),
               notebook="notebooks/01_variational_autoencoder.ipynb")
    (tmp_path / "models" / "vae_decoder.keras").unlink()
    with pytest.raises(FileNotFoundError, match=r"vae_decoder\.keras\. Run notebooks/01_variational"):
        load_codec(tmp_path, "vae")


def test_bad_name(tmp_path):
    with pytest.raises(ValueError, match="letters, digits and '_'"):
        save_codec(tmp_path, "../escape", mlp_encoder(2, []), mlp_decoder(2, []))
