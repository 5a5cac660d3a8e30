"""Validation and test error per epoch of every run of scripts/train_semisupervised.py in a
folder (its metrics/long_*.json), one panel per label count, as <results_dir>/error_curves.png.

    python scripts/plot_semisupervised_long.py results/long-semisupervised
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib.pyplot as plt  # noqa: E402

from aae.plotting import save_figure  # noqa: E402
from aae.runner.summary import finished_long_runs  # noqa: E402

PAPER = {100: 1.90, 1000: 1.60, 50_000: 0.85}  # the AAE paper's table 2, error in %
results_dir = Path(sys.argv[1])
runs = {}
for run in finished_long_runs(results_dir / "metrics"):
    runs.setdefault(run["parameters"]["n_labels"], []).append((run["parameters"]["seed"], run["metrics"]))
if not runs:
    sys.exit(f"no long_<n>_labels_seed<k>.json in {results_dir / 'metrics'}: run scripts/train_semisupervised.py first")
fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.6), squeeze=False)
for ax, (n_labels, seeded) in zip(axes[0], sorted(runs.items())):
    for i, (seed, m) in enumerate(seeded):
        val, test = m["history"]["validation_error"], m["history"]["test_error"]
        epochs = range(1, len(val) + 1)
        line, = ax.plot(epochs, [100 * v for v in val], "-", label=f"seed {seed}, validation")
        ax.plot(epochs, [100 * t for t in test], ":", color=line.get_color(), label=f"seed {seed}, test")
        ax.plot(m["best_epoch"], 100 * m["test_error"], "o", color=line.get_color())
    if n_labels in PAPER:
        ax.axhline(PAPER[n_labels], ls="--", color="0.5", label=f"paper, {PAPER[n_labels]:.2f} %")
    ax.set(xlabel="epoch", ylabel="error (%)", title=f"{n_labels:,} labels (dot: the epoch validation chose)",
           ylim=(0, None))
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
print(save_figure(fig, "error_curves", results_dir))
