"""The sentences and rules that write what the notebooks and the README say (aae.verdicts)."""
import numpy as np
import pytest

from aae.verdicts import occupancy_verdict, ordinal, recommend_sparse, zero_word


def summary(zero_share=0.2, unclear=0.1, zero_freq=0.1, top=0, least=1):
    """An occupancy summary where zero holds `zero_share` of the clear mass, the rest even."""
    clear = {"0": zero_share, **{str(d): (1 - zero_share) / 9 for d in range(1, 10)}}
    ratio = {k: v / (zero_freq if k == "0" else (1 - zero_freq) / 9) for k, v in clear.items()}
    return {"confidence_threshold": 0.9, "kl_nats": 0.05,
            "prior_mass_share": {**{k: v * (1 - unclear) for k, v in clear.items()}, "unclear": unclear},
            "clear_prior_mass_share": clear, "over_representation": ratio,
            "area_share_95": {"0": 0.3}, "sweep_share": {"0": 0.4},
            "training_frequency": {"0": zero_freq}, "most_over_represented": top, "least_served": least}


def sweep(*ratios):
    return [{"threshold": t, "zero_over_representation": r} for t, r in zip((0.5, 0.7, 0.95), ratios)]


def test_over_represented_zero_is_named_with_its_numbers():
    text = occupancy_verdict("vae", summary(0.2), sweep(1.8, 1.9, None))
    assert text.startswith("vae: zero is over-represented.")
    assert "2.00 times its fair share (from 1.80 to 2.00 over thresholds 0.5 to 0.9)" in text
    assert "18.0% of the prior's mass (20.0% of the mass that decodes to a clear digit, the largest" in text
    assert "10.0% of the training digits" in text and "10.0% of the prior mass decodes to no clear digit" in text


def test_the_least_served_digit_is_named_with_its_share():
    s = summary(0.2, least=4)
    s["over_representation"] = {**s["over_representation"], "4": 0.2, "7": None}  # 7: absent from training
    text = occupancy_verdict("aae", s, sweep(1.8))
    assert "the least served 4 (0.20 times);" in text
    names = [f"class {k}" for k in range(10)]
    assert "the least served class 4 (0.20 times)" in occupancy_verdict("aae", s, sweep(1.8), classes=names)


def test_fair_and_undecided_and_under():
    assert "about fairly represented" in occupancy_verdict("m", summary(0.1), sweep(0.95, 1.05))
    assert "neither clearly over- nor under-represented" in occupancy_verdict("m", summary(0.1), sweep(0.7, 1.4))
    text = occupancy_verdict("m", summary(0.05), sweep(0.4, 0.6))
    assert "zero is under-represented" in text and "the 10th largest of the ten" in text


def test_too_little_clear_mass_is_not_judged():
    text = occupancy_verdict("aae", summary(unclear=0.95), sweep(2.0))
    assert text == ("aae: only 5.0% of the prior mass decodes to a clear digit at threshold 0.9, too little "
                    "to judge the balance (is the model trained, and the judge?).")
    assert "too little" in occupancy_verdict("aae", {**summary(), "kl_nats": None})


@pytest.mark.parametrize("k, text", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"),
                                     (12, "12th"), (13, "13th"), (21, "21st"), (102, "102nd")])
def test_ordinal(k, text):
    assert ordinal(k) == text


def test_zero_word_band_edges():
    assert zero_word([0.9, 1.1]) == "about fairly represented"
    assert zero_word([1.11, 1.5]) == "over-represented"
    assert zero_word([0.5, 0.89]) == "under-represented"


ROWS = [{"name": "plain-32", "test_bce": 0.090, "mean_activation": 1.9, "near_zero_fraction": 0.4},
        {"name": "KL sum", "test_bce": 0.110, "mean_activation": 0.06, "near_zero_fraction": 0.8},
        {"name": "KL mean", "test_bce": 0.085, "mean_activation": 0.09, "near_zero_fraction": 0.7},
        {"name": "too dense", "test_bce": 0.080, "mean_activation": 0.11, "near_zero_fraction": 0.2}]


def test_recommend_the_sharpest_sparse_enough_variant():
    out = recommend_sparse(ROWS, target_p=0.05)
    assert out["recommended"]["name"] == "KL mean"  # 'too dense' is sharper but above 2p = 0.1
    assert out["recommended"]["meets_sparsity_target"] is True
    assert out["baseline"]["name"] == "plain-32"
    assert out["lines"][-1] == "unpenalised autoencoder: BCE 0.0900 -> the recommended variant meets the bar"
    assert "meets_sparsity_target" not in ROWS[2]  # the caller's rows are not changed


def test_recommend_the_sparsest_when_none_is_sparse_enough():
    out = recommend_sparse(ROWS, target_p=0.01)
    assert out["recommended"]["name"] == "KL sum" and out["recommended"]["meets_sparsity_target"] is False
    assert out["lines"][0].startswith("NOTE: no variant reached mean activation <= 0.02")
    assert out["lines"][-1].endswith("misses the bar")
    assert recommend_sparse(ROWS[1:], 0.05)["baseline"] is None
    with pytest.raises(ValueError, match="at least one"):
        recommend_sparse([], 0.05)


def test_other_datasets_name_their_classes():
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"]
    text = occupancy_verdict("vae", summary(0.2, top=7), sweep(1.8), classes=names)
    assert text.startswith("vae: T-shirt/top is over-represented.")
    assert "clear class, the largest" in text and "most over-represented class is Sneaker" in text
    assert "digit" not in text and "of the training classes" in text


# -- over seeds ----------------------------------------------------------------------------------
from aae.verdicts import over_seeds, seed_groups, seed_verdict  # noqa: E402


def _seed_summary(ratios, unclear=0.2):
    judged = {d: r for d, r in enumerate(ratios) if r is not None}
    return {"over_representation": {str(d): r for d, r in enumerate(ratios)},
            "prior_mass_share": {"unclear": unclear},
            "most_over_represented": max(judged, key=judged.get) if judged else None,
            "least_served": min(judged, key=judged.get) if judged else None}


def test_seed_groups_gather_a_models_seeds():
    names = ["aae_gaussian", "aae_supervised", "vae", "aae_gaussian_seed1", "vae_seed2", "aae_gaussian_seed2"]
    assert seed_groups(names) == {"aae_gaussian": ["aae_gaussian", "aae_gaussian_seed1", "aae_gaussian_seed2"],
                                  "aae_supervised": ["aae_supervised"], "vae": ["vae", "vae_seed2"]}


def test_over_seeds_statistics_and_verdicts():
    a = [1.5] + [0.5] + [1.0] * 8
    b = [1.3] + [0.7] + [1.0] * 8
    c = [1.2] + [0.3] + [1.0] * 8
    stats = over_seeds([_seed_summary(a), _seed_summary(b), _seed_summary(c, unclear=0.4)])
    assert stats["n_seeds"] == 3 and stats["clear_mass"] == pytest.approx([0.8, 0.8, 0.6])
    assert stats["mean"][0] == pytest.approx(4.0 / 3) and stats["std"][0] == pytest.approx(np.std([1.5, 1.3, 1.2], ddof=1))
    assert stats["least"] == pytest.approx([0.5, 0.7, 0.3])
    text = seed_verdict("aae_gaussian", stats)
    assert "0 is over-represented for every seed (1.20-1.50 times its fair share)" in text
    assert "most over-represented class is 0 for every seed" in text
    assert "The least-served class is 1 for every seed, with 0.30-0.70 of its fair share" in text
    # the answer flips with the seed
    flip = over_seeds([_seed_summary([1.4] + [1.0] * 9), _seed_summary([0.6] + [1.2] * 9)])
    text = seed_verdict("vae", flip, classes=[f"c{d}" for d in range(10)])
    assert "over-represented for 1 of 2 seeds and under-represented for 1" in text and "does not survive" in text
    assert "most over-represented class changes with the seed (c0, c1)" in text
    assert "least-served class changes with the seed (c1, c0)" in text
    # a span that rounds to one value is given once
    starved = over_seeds([_seed_summary([1.5] + [0.001] + [1.0] * 8), _seed_summary([1.4] + [0.004] + [1.0] * 8)])
    text = seed_verdict("m", starved)
    assert "least-served class is 1 for every seed, with 0.00 of its fair share" in text and "0.00-0.00" not in text
    # too little clear mass: not judged; a seed with too little is left out of the verdict
    none = over_seeds([_seed_summary([None] * 10, unclear=1.0), _seed_summary([1.0] * 10, unclear=0.95)])
    assert "not judged" in seed_verdict("m", none)
    part = over_seeds([_seed_summary([1.05] * 10), _seed_summary([1.0] * 10, unclear=0.95)])
    assert "about fairly represented for every seed" in seed_verdict("m", part) and "1 seed with too little" in seed_verdict("m", part)
