"""aae: helpers for the autoencoder notebooks (data, layers, losses, models, plots, metrics)."""

__version__ = "0.1.0"
