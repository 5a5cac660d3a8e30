"""Saving and loading trained models with the settings needed to use them.

`save_codec` writes `<results_dir>/models/<name>_encoder.keras`, `<name>_decoder.keras` and
`<name>.json`: the code size, the prior with its arguments, the posterior and whatever else the
notebook passes. `load_codec` reads all three back, the prior rebuilt as an object. A notebook that
uses another notebook's model (05 uses 01's and 04's) finds them with `saved_codecs` and reads
their settings from the JSON, so no setting is typed twice; `further_seeds` finds the same models
trained from other seeds in another results folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import keras

from .files import atomic_path
from .layers import Sampling
from .priors import prior_from_config
from .verdicts import seed_groups

__all__ = ["Codec", "save_codec", "load_codec", "saved_codecs", "further_seeds"]


@dataclass
class Codec:
    """A trained encoder (x -> code, or [z_mean, z_log_var]) and decoder (code -> pixel logits)."""

    name: str
    encoder: keras.Model
    decoder: keras.Model
    prior: object = None
    settings: dict = field(default_factory=dict)

    @property
    def latent_dim(self):
        return int(self.settings["latent_dim"])


def _folder(results_dir):
    return Path(results_dir) / "models"


def save_codec(results_dir, name, encoder, decoder, prior=None, **settings):
    """Write the two `.keras` files and `<name>.json`; returns the JSON's path.

    `settings` (JSON-ready values) are stored as given, next to `latent_dim` (from the decoder)
    and `prior` (its `get_config()`).
    """
    if not name or not str(name).replace("_", "").isalnum():
        raise ValueError(f"a model name is letters, digits and '_', got {name!r}")
    folder = _folder(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {part: f"{name}_{part}.keras" for part in ("encoder", "decoder")}
    for part, model in (("encoder", encoder), ("decoder", decoder)):
        with atomic_path(folder / files[part]) as tmp:  # a stopped run leaves no half-written file
            model.save(tmp)
    record = {"name": name, "latent_dim": int(decoder.inputs[0].shape[-1]),
              "prior": None if prior is None else prior.get_config(), **settings, "files": files}
    path = folder / f"{name}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_codec(results_dir, name, source=None):
    """The `Codec` saved as `name` in `<results_dir>/models`.

    Raises FileNotFoundError saying which file is missing and what writes it (`source`, else the
    notebook named in the settings, else "the notebook that trains it").
    """
    folder = _folder(results_dir)
    path = folder / f"{name}.json"
    settings = json.loads(path.read_text()) if path.is_file() else None
    files = (settings or {}).get("files", {p: f"{name}_{p}.keras" for p in ("encoder", "decoder")})
    missing = [str(p) for p in [path] + [folder / files[p] for p in ("encoder", "decoder")]
               if not p.is_file()]
    if missing:
        source = source or (settings or {}).get("notebook") or f"the notebook that trains '{name}'"
        raise FileNotFoundError(
            f"model '{name}' is not saved in {folder}: missing {', '.join(missing)}. Run {source} "
            f"first with the same results_dir ({results_dir}).")
    encoder, decoder = (keras.saving.load_model(folder / files[p], compile=False,
                                                custom_objects={"Sampling": Sampling})
                        for p in ("encoder", "decoder"))
    prior = prior_from_config(settings["prior"]) if settings.get("prior") else None
    return Codec(name, encoder, decoder, prior, settings)


def _saved_settings(results_dir):
    """{name: settings} of every model saved in `<results_dir>/models`, in the order of the notebooks
    that wrote them, then by name (JSON files that are not a saved model's are skipped)."""
    found = []
    for path in sorted(_folder(results_dir).glob("*.json")):
        try:
            settings = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if "files" in settings:
            found.append((settings.get("notebook") or "", settings["name"], settings))
    return {name: settings for _, name, settings in sorted(found, key=lambda f: f[:2])}


def saved_codecs(results_dir, latent_dim=None):
    """Names of the models saved in `<results_dir>/models` (with that `latent_dim`), in the order
    of the notebooks that wrote them, then by name."""
    return [name for name, settings in _saved_settings(results_dir).items()
            if latent_dim is None or settings.get("latent_dim") == latent_dim]


def further_seeds(results_dir, names, folder):
    """The same models as `names` trained from other seeds, saved in `<folder>/models`.

    A model `<name>_seed<k>` there counts when `<name>` is one of `names` (saved in
    `<results_dir>/models`), `names` does not hold it already, and its settings (code size, prior,
    posterior, layers, the notebook that trained it) equal those of `<name>`. Returns
    ({seed model: folder}, {left-out model: why}), grouped by model as `seed_groups` groups them.
    """
    found, left_out = {}, {}
    first, further = _saved_settings(results_dir), _saved_settings(folder)
    for base, group in seed_groups(list(further)).items():
        if base not in names or base not in first:  # a first seed not saved: load_codec says so
            continue
        for name in group:
            if name == base or name in names:
                continue
            differ = sorted(k for k in (first[base].keys() | further[name].keys()) - {"name", "files"}
                            if first[base].get(k) != further[name].get(k))
            if differ:
                left_out[name] = (f"its {', '.join(differ)} differ from {base}'s in {_folder(results_dir)}: "
                                  f"trained by an older version; train the seeds again")
            else:
                found[name] = Path(folder)
    return found, left_out
