"""The rules and sentences that turn measured numbers into what the notebooks and README say.

`occupancy_verdict` sums up one model's latent occupancy (notebook 05); `recommend_sparse` picks
the sparse autoencoder to recommend (notebook 03). Both are plain functions of the numbers, so
tests can check the words against constructed cases.
"""
from __future__ import annotations

import re
import warnings

import numpy as np

__all__ = ["JUDGE_ACCURACY", "FAIR_BAND", "MIN_CLEAR_MASS", "occupancy_verdict", "zero_word", "ordinal",
           "seed_groups", "over_seeds", "seed_verdict",
           "recommend_sparse"]

# A judge below this test accuracy makes the occupancy numbers say little (notebook 05 warns):
# the small CNN reaches 0.992 on MNIST and about 0.91 on Fashion-MNIST at 3 epochs.
JUDGE_ACCURACY = {"mnist": 0.99, "fashion_mnist": 0.90}
FAIR_BAND = (0.9, 1.1)   # zero's share / its training frequency within this band: "fair"
MIN_CLEAR_MASS = 0.1     # below this share of clear prior mass, the balance is not judged


def ordinal(k):
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def zero_word(ratios):
    """How zero is represented, given its over-representation ratios over several thresholds."""
    low, high = min(ratios), max(ratios)
    if FAIR_BAND[0] <= low and high <= FAIR_BAND[1]:
        return "about fairly represented"
    if low > 1:
        return "over-represented"
    if high < 1:
        return "under-represented"
    return "neither clearly over- nor under-represented (it depends on the threshold)"


def occupancy_verdict(model, summary, sensitivity=(), classes=None):
    """One paragraph on how much of `model`'s prior mass decodes to class 0 (zero, for MNIST), from
    its `aae.occupancy.occupancy_summary` and the threshold sweep rows (dicts with `threshold` and
    `zero_over_representation`, None where nothing is clear at that threshold). `classes`: the
    ten class names (`aae.data.class_names`); None: digits."""
    s = summary
    digits = classes is None or list(classes) == [str(d) for d in range(10)]
    first, kind, kinds = ("zero", "digit", "digits") if digits else (classes[0], "class", "classes")
    threshold = s["confidence_threshold"]
    clear_mass = max(0.0, 1 - s["prior_mass_share"]["unclear"])
    if s["kl_nats"] is None or clear_mass < MIN_CLEAR_MASS:
        return (f"{model}: only {clear_mass:.1%} of the prior mass decodes to a clear {kind} at threshold "
                f"{threshold:g}, too little to judge the balance (is the model trained, and the judge?).")
    checked = [(threshold, s["over_representation"]["0"])] + [
        (r["threshold"], r["zero_over_representation"]) for r in sensitivity
        if r["zero_over_representation"] is not None]
    thresholds, ratios = [t for t, _ in checked], [v for _, v in checked]
    clear = np.array([s["clear_prior_mass_share"][str(d)] for d in range(10)])
    rank = int((clear > clear[0]).sum()) + 1
    place = "the largest" if rank == 1 else f"the {ordinal(rank)} largest"
    top = s["most_over_represented"]
    top_name = top if digits else classes[top]
    low = s["least_served"]  # the smallest share of prior mass against its training frequency
    low_name = low if digits else classes[low]
    return (f"{model}: {first} is {zero_word(ratios)}. It decodes from {s['prior_mass_share']['0']:.1%} of the "
            f"prior's mass ({clear[0]:.1%} of the mass that decodes to a clear {kind}, {place} of the ten) "
            f"against {s['training_frequency']['0']:.1%} of the training {kinds}: "
            f"{s['over_representation']['0']:.2f} times its fair share "
            f"(from {min(ratios):.2f} to {max(ratios):.2f} over thresholds {min(thresholds):g} to "
            f"{max(thresholds):g}). It covers {s['area_share_95']['0']:.1%} of the area of the prior's 95% "
            f"region and {s['sweep_share']['0']:.1%} of the square sweep. The most over-represented {kind} is "
            f"{top_name} ({s['over_representation'][str(top)]:.2f} times), the least served {low_name} "
            f"({s['over_representation'][str(low)]:.2f} times); {s['prior_mass_share']['unclear']:.1%} of "
            f"the prior mass decodes to no clear {kind}; KL to the training balance {s['kl_nats']:.3f} nats.")


def recommend_sparse(rows, target_p, baseline="plain-32"):
    """The sparse autoencoder to recommend among `rows` (dicts with name, test_bce, mean_activation).

    Rule: among the variants whose mean code activation is at most twice the target `target_p`,
    the one with the lowest test BCE; if none is that sparse (e.g. a quick run), the sparsest one,
    flagged. Returns {"recommended": that row plus `meets_sparsity_target`, "baseline": the row
    named `baseline` or None, "lines": sentences saying so}.
    """
    if not rows:
        raise ValueError("recommend_sparse needs at least one trained variant")
    bound = 2 * target_p
    eligible = [r for r in rows if r["mean_activation"] <= bound]
    lines = []
    if eligible:
        best = min(eligible, key=lambda r: r["test_bce"])
    else:
        best = min(rows, key=lambda r: r["mean_activation"])
        lines.append(f"NOTE: no variant reached mean activation <= {bound:g}; showing the sparsest "
                     "one instead")
    best = {**best, "meets_sparsity_target": bool(eligible)}
    lines.append(f"recommended: {best['name']}: test BCE {best['test_bce']:.4f}, mean activation "
                 f"{best['mean_activation']:.4f}"
                 + (f", {best['near_zero_fraction']:.1%} of activations near zero"
                    if "near_zero_fraction" in best else ""))
    base = next((r for r in rows if r["name"] == baseline), None)
    if base is not None:
        word = "meets" if best["test_bce"] <= base["test_bce"] else "misses"
        lines.append(f"unpenalised autoencoder: BCE {base['test_bce']:.4f} -> the recommended variant "
                     f"{word} the bar")
    return {"recommended": best, "baseline": base, "lines": lines}


# -- over seeds (notebook 05) --------------------------------------------------------------------
def seed_groups(names):
    """{base name: [names]} for saved models named `<base>` (its first seed) and `<base>_seed<k>`
    (further seeds of the same model), in the order given; `vae`, `vae_seed2` -> {"vae": [...]}."""
    groups = {}
    for name in names:
        match = re.fullmatch(r"(.+)_seed\d+", name)
        groups.setdefault(match.group(1) if match else name, []).append(name)
    return groups


def over_seeds(summaries):
    """Per-class numbers of one model trained from several seeds: {"n_seeds", "clear_mass" (the
    share of prior mass that decodes to a clear class, per seed), "over_representation" (per class,
    per seed; None where nothing is clear), "mean"/"std" (over seeds, per class), "least" (per seed:
    the smallest over-representation, the least-served class against its fair share), "most_over_represented"
    and "least_served" (per seed: the class, as each summary names it)}.

    `summaries`: the `aae.occupancy.occupancy_summary` of each seed's model.
    """
    runs = list(summaries)
    ratios = np.array([[np.nan if s["over_representation"][str(d)] is None else s["over_representation"][str(d)]
                        for d in range(10)] for s in runs], float)
    clear = [max(0.0, 1.0 - float(s["prior_mass_share"]["unclear"])) for s in runs]
    with warnings.catch_warnings():  # a class no seed could judge: NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(ratios, 0), (np.nanstd(ratios, 0, ddof=1) if len(runs) > 1 else np.zeros(10))
    json_ready = lambda a: [[None if np.isnan(v) else float(v) for v in row] for row in np.atleast_2d(a)]  # noqa: E731
    return {"n_seeds": len(runs), "clear_mass": clear, "over_representation": json_ready(ratios),
            "mean": json_ready(mean)[0], "std": json_ready(std)[0],
            "least": [None if s["least_served"] is None else s["over_representation"][str(s["least_served"])]
                      for s in runs],
            "most_over_represented": [s["most_over_represented"] for s in runs],
            "least_served": [s["least_served"] for s in runs]}


def _span(values):
    """"lo-hi" of `values` at two decimals, or the one value when they round alike."""
    low, high = f"{np.nanmin(values):.2f}", f"{np.nanmax(values):.2f}"
    return low if low == high else f"{low}-{high}"


def _per_seed(kind, classes, name):
    """"The <kind> class is 4 for every seed" or "... changes with the seed (4, 5, 4)"."""
    if len(set(classes)) == 1:
        return f"The {kind} class is {name(classes[0])} for every seed"
    return f"The {kind} class changes with the seed ({', '.join(name(c) for c in classes)})"


def seed_verdict(model, stats, classes=None):
    """Sentences on which occupancy findings of `model` hold for every seed (`over_seeds`'s stats)."""
    name = (lambda d: str(d)) if classes is None else (lambda d: classes[d])
    n = stats["n_seeds"]
    ratios = np.asarray(stats["over_representation"], float)
    judged = [i for i, c in enumerate(stats["clear_mass"]) if c >= MIN_CLEAR_MASS]
    clear = ", ".join(f"{100 * c:.0f} %" for c in stats["clear_mass"])
    if not judged:
        return (f"{model}, {n} seeds: less than {MIN_CLEAR_MASS:.0%} of the prior mass decodes to a clear class "
                f"for every seed ({clear}), so the balance is not judged.")
    zero = ratios[judged, 0]
    over, under = int(np.sum(zero > 1)), int(np.sum(zero < 1))
    fair = int(np.sum((FAIR_BAND[0] <= zero) & (zero <= FAIR_BAND[1])))
    span = _span(zero)
    k = len(judged)
    if fair == k:
        word = f"about fairly represented for every seed ({span} of its fair share)"
    elif over == k:
        word = f"over-represented for every seed ({span} times its fair share)"
    elif under == k:
        word = f"under-represented for every seed ({span} of its fair share)"
    else:
        word = (f"over-represented for {over} of {k} seeds and under-represented for {under} ({span} of its "
                f"fair share): the answer does not survive a change of seed")
    most = [stats["most_over_represented"][i] for i in judged]
    fewest = [stats["least_served"][i] for i in judged]
    least = [stats["least"][i] for i in judged]
    text = (f"{model}, {n} seeds (clear prior mass {clear}): {name(0)} is {word}. "
            + _per_seed("most over-represented", most, name) + ". "
            + _per_seed("least-served", fewest, name) + f", with {_span(least)} of its fair share.")
    if k < n:
        text += f" ({n - k} seed{'s' * (n - k > 1)} with too little clear mass left out.)"
    return text
