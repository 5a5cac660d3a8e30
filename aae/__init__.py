"""aae: the package the autoencoder notebooks import (models, priors, losses, data, metrics,
figures) and the runner that regenerates every result (`python -m aae reproduce`)."""

__version__ = "0.1.0"
