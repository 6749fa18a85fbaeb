"""Gittins indices of Beta(a, b) arms (surrogate.rl2.gittins) against published values and theory.

Published values, 4 decimals (the table cells of Gittins' Bernoulli/Beta tables; Gittins,
Glazebrook & Weber 2011, Table 8.x, whose state (a, b) is Beta(a, b)):
- gamma = 0.9: Beta(1, 1) 0.7029, Beta(2, 2) 0.6346, Beta(3, 3) 0.6010, Beta(10, 2) 0.8695,
  Beta(10, 7) 0.6300 -- quoted from Gittins' table in Christian & Griffiths, "Algorithms to Live
  By" (2016), ch. 2 ("0-0 ... 0.7029", "1-1 ... 0.6346", "2-2 ... 0.6010", "nine initial wins
  followed by a loss ... 0.8695"; an a-b record is Beta(a + 1, b + 1)), and "0.6300" for the
  book's more-played machine at 60% -- which record is our reading: 9-6 (Beta(10, 7)) is the one
  that gives 0.6300 (12-8 gives 0.6242, 6-4 gives 0.6395).
- gamma = 0.9: Beta(2, 1) 0.8001, Beta(3, 1) 0.8452, Beta(1, 2) 0.5001, Beta(1, 3) 0.3796 --
  the expected values in GittinsIndices.jl (ydalmia), test/test_bernoulli_gittins.jl.
- gamma = 0.99: Beta(1, 1) 0.8699 -- "Algorithms to Live By", ch. 2 ("worth a guaranteed 86.99%").
  No other published gamma = 0.99 cell was found; the rest of that table is checked by theory
  (properties, one-armed-bandit optimality) and by the deeper truncation below.
"""
import numpy as np
import pytest

from surrogate.errors import ConfigError
from surrogate.rl2 import gittins as G
from surrogate.rl2.gittins import gittins_index, gittins_table

PUBLISHED = [
    (0.9, 1, 1, 0.7029), (0.9, 2, 2, 0.6346), (0.9, 3, 3, 0.6010), (0.9, 10, 2, 0.8695),
    (0.9, 10, 7, 0.6300), (0.9, 2, 1, 0.8001), (0.9, 3, 1, 0.8452), (0.9, 1, 2, 0.5001),
    (0.9, 1, 3, 0.3796), (0.99, 1, 1, 0.8699),
]


@pytest.mark.parametrize("gamma,a,b,value", PUBLISHED)
def test_index_matches_published_tables(gamma, a, b, value):
    # 4-decimal tables: rounding is 5e-5, so 1e-4 is tighter than the 1e-3
    assert abs(gittins_index(a, b, gamma) - value) < 1e-4


def test_table_matches_published_tables_and_the_per_state_search():
    for gamma, states in ((0.9, [(a, b) for a in range(1, 13) for b in range(1, 13)]),
                          (0.99, [(1, 1), (12, 1), (1, 12), (7, 4), (12, 12)])):
        table = gittins_table(12, gamma)
        assert table.shape == (13, 13)
        assert np.isnan(table[0]).all() and np.isnan(table[:, 0]).all()
        for g, a, b, value in PUBLISHED:
            if g == gamma:
                assert abs(table[a, b] - value) < 1e-3
        a, b = np.array(states).T
        # the one-sweep table interpolates on a grid of lam: measured within 2e-4 of the search
        assert np.abs(table[a, b] - G._search(a, b, gamma, None)).max() < 3e-4


def test_index_properties():
    """Increasing in a, decreasing in b, strictly between the mean and 1 (Gittins et al. 2011, ch. 8)."""
    for gamma in (0.9, 0.99):
        t = gittins_table(25, gamma)[1:, 1:]
        a, b = np.meshgrid(np.arange(1, 26), np.arange(1, 26), indexing="ij")
        mean = a / (a + b)
        assert (t > mean).all() and (t < 1).all()
        assert (np.diff(t, axis=0) > 0).all() and (np.diff(t, axis=1) < 0).all()
    assert gittins_index(1, 1, 0.99) > gittins_index(1, 1, 0.9)   # more patience, more exploration


def test_truncation_error_below_1e5(monkeypatch):
    base = {(g, a, b): gittins_index(a, b, g) for g in (0.9, 0.99) for a, b in ((1, 1), (20, 20))}
    depth = G._depth
    monkeypatch.setattr(G, "_depth", lambda gamma: 2 * depth(gamma))
    for (g, a, b), value in base.items():
        assert abs(gittins_index(a, b, g) - value) < 1e-5


def _one_armed_values(p, gamma, depth=150):
    """Brute-force optimal values of 'Beta arm or retire to a known arm p', state by state."""
    q, v = {}, {}
    for d in range(depth, 1, -1):
        for a in range(1, d):
            b, mu = d - a, a / d
            if d == depth:
                v[a, b] = max(p, mu) / (1 - gamma)
                continue
            q[a, b] = mu * (1 + gamma * v[a + 1, b]) + (1 - mu) * gamma * v[a, b + 1]
            v[a, b] = max(p / (1 - gamma), q[a, b])
    return q


def test_retiring_to_a_known_arm_exactly_when_the_index_drops_below_it():
    """The one-armed bandit (Gittins 1979): continuing is optimal iff index > p."""
    gamma = 0.9
    table = gittins_table(12, gamma)
    for p in (0.2, 0.45, 0.6, 0.75, 0.9):
        q = _one_armed_values(p, gamma)
        for a in range(1, 13):
            for b in range(1, 13):
                if abs(table[a, b] - p) < 1e-3:
                    continue                        # a near-tie either way
                assert (q[a, b] > p / (1 - gamma)) == (table[a, b] > p), (p, a, b)


def test_finite_horizon_variant():
    assert gittins_index(3, 5, 1.0, horizon=1) == pytest.approx(3 / 8, abs=1e-7)   # one pull: the mean
    # two pulls of Beta(1, 1): 2 lam = 1/2 (1 + max(lam, 2/3)) + 1/2 max(lam, 1/3) -> lam = 5/9
    assert gittins_index(1, 1, 1.0, horizon=2) == pytest.approx(5 / 9, abs=1e-7)
    table = gittins_table(3, 0.95, horizon=6)
    assert table[2, 3] == pytest.approx(gittins_index(2, 3, 0.95, horizon=6), abs=1e-9)
    assert gittins_index(1, 1, 0.9, horizon=200) == pytest.approx(gittins_index(1, 1, 0.9), abs=1e-6)


def test_bad_input_raises_config_error():
    for bad in (lambda: gittins_index(1, 1, 1.0), lambda: gittins_index(1, 1, 0.0),
                lambda: gittins_index(0, 1, 0.9), lambda: gittins_table(0, 0.9),
                lambda: gittins_index(1, 1, 0.9, horizon=0)):
        with pytest.raises(ConfigError):
            bad()
