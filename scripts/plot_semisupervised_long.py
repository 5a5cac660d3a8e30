"""Validation and test error per epoch of a run of scripts/train_semisupervised.py, from its
<name>.partial.json, as <results_dir>/<name>_error_curve.png.

    python scripts/plot_semisupervised_long.py results/long-semisupervised long_100_labels_seed0
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib.pyplot as plt  # noqa: E402

from aae.plotting import save_figure  # noqa: E402

results_dir, name = sys.argv[1], sys.argv[2]
rows = json.loads((Path(results_dir) / "metrics" / f"{name}.partial.json").read_text())["epochs"]
fig, ax = plt.subplots(figsize=(6, 3.5))
epochs = [r["epoch"] for r in rows]
for key, style in (("validation_error", "-"), ("test_error", ":")):
    ax.plot(epochs, [100 * r[key] for r in rows], style, marker="o", label=key.replace("_", " "))
ax.set(xlabel="epoch", ylabel="error (%)", title=f"{name}: validation chooses the epoch")
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.legend()
print(save_figure(fig, f"{name}_error_curve", results_dir))
