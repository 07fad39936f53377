"""market_sim's numerical helpers against the libraries they stand in for."""

import numpy as np


def test_ar1_filter_is_scipys_lfilter_bit_for_bit():
    """market_sim's own first-order filter (no scipy.signal import) equals lfilter exactly:
    1-D with and without an initial state, and column-wise with a coefficient per column."""
    from scipy.signal import lfilter

    from alvh_pipeline.core.market_sim import ar1_filter

    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000) * 0.01
    for phi, z0 in ((0.995, 0.995 * 0.045), (0.999, 0.0), (0.93, -0.3)):
        assert np.array_equal(ar1_filter(x, phi, z0), lfilter([1.0], [1.0, -phi], x, zi=[z0])[0])
    panel, phis = rng.standard_normal((800, 30)), rng.choice([0.9, 0.95, 0.99], 30)
    ref = np.empty_like(panel)
    for p in np.unique(phis):
        ref[:, phis == p] = lfilter([1.0], [1.0, -p], panel[:, phis == p], axis=0)
    assert np.array_equal(ar1_filter(panel, phis), ref)
