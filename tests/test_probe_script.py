"""scripts/probe_2d_aae.py: the radial fit of 2-D codes to the Gaussian prior."""
import importlib.util

import numpy as np
import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("probe_2d_aae", ROOT / "scripts" / "probe_2d_aae.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_radial_ks_is_small_for_prior_samples_and_large_for_a_heavier_tailed_cloud(scale):
    rng = np.random.default_rng(0)
    n = 20_000
    gaussian = scale * rng.standard_normal((n, 2))
    # Laplace of the same per-axis std: the right std, but too many codes near the centre and far out
    laplace = scale * rng.laplace(scale=1 / np.sqrt(2), size=(n, 2))
    assert np.allclose(laplace.std(0), scale, rtol=0.05)
    # the KS statistic of n true samples is about 0.87 / sqrt(n) = 0.006 on average; 0.02 is far beyond it
    assert script.radial_ks(gaussian, scale) < 0.02
    assert script.radial_ks(laplace, scale) > 0.1
    # codes on the prior's scale but ring-shaped (every radius near its median) are far off too
    ring = gaussian / np.linalg.norm(gaussian, axis=1, keepdims=True) * scale * np.sqrt(2 * np.log(2))
    assert script.radial_ks(ring, scale) > 0.45
    # the right cloud measured against the wrong scale is far off
    assert script.radial_ks(gaussian, 2 * scale) > 0.3
