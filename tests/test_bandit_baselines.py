"""RL²'s bandit baselines (surrogate.rl2.bandit_baselines) on cases with known answers."""
import functools
import math

import numpy as np
import pytest

from surrogate.errors import ConfigError
from surrogate.rl2 import bandit_baselines as bb
from surrogate.rl2.bandit_baselines import (BANDIT_BASELINES, draw_bandits, evaluate_bandit_baselines,
                                            regret, ucb1_index)

FAST = {"gittins": {"gamma": 0.9}}   # the gamma = 0.9 table builds in well under a second


def test_draw_bandits_and_bad_input():
    means = draw_bandits(np.random.default_rng(0), 2000, 5)
    assert means.shape == (2000, 5) and means.min() >= 0 and means.max() <= 1
    assert abs(means.mean() - 0.5) < 0.01
    with pytest.raises(ConfigError):
        draw_bandits(np.random.default_rng(0), 10, 1)
    for name, fn in BANDIT_BASELINES.items():
        with pytest.raises(ConfigError):
            fn(means[:, :1], 10, np.random.default_rng(0))      # k < 2
        with pytest.raises(ConfigError):
            fn(means, 0, np.random.default_rng(0))              # n < 1


def test_random_earns_n_times_the_average_mean():
    means = draw_bandits(np.random.default_rng(1), 2000, 5)
    n = 50
    totals = BANDIT_BASELINES["random"](means, n, np.random.default_rng(2))
    # per pull: reward - mean(means_i) has variance <= 1/4, so the average is within 4 sd = 0.32
    assert abs(totals.mean() - n * means.mean()) < 4 * math.sqrt(n * 0.25 / len(means))


@pytest.mark.parametrize("name", ["greedy", "eps_greedy", "ucb1", "ts", "ots", "gittins"])
def test_two_arms_the_better_one_most_of_the_time(name):
    n, means = 100, np.tile([0.9, 0.1], (400, 1))
    totals = BANDIT_BASELINES[name](means, n, np.random.default_rng(3), **FAST.get(name, {}))
    better = (totals.mean() / n - 0.1) / 0.8           # share of pulls on the 0.9 arm
    assert better > 0.85, better                       # random: 0.5; measured 0.92 (UCB1, c=1) to 0.998
    assert regret(means, totals, n).mean() < 0.15 * 0.8 * n


def test_ucb1_index_and_first_pulls_by_hand():
    s, f = np.array([[2.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])
    want = [3 / 4 + math.sqrt(2 * math.log(5) / 4), 1 / 3 + math.sqrt(2 * math.log(5) / 3),
            1 / 2 + math.sqrt(2 * math.log(5) / 2)]
    np.testing.assert_allclose(ucb1_index(s, f, 5, c=1.0)[0], want)
    # arms that always / never pay: t=1 ties -> arm 0 (+1); t=2 arm 0 (2/3 + 0.680 > 1/2 + 0.833? yes, +1);
    # t=3 arm 1 (1/2 + 1.048 > 3/4 + 0.741); t=4 arm 2 (1/2 + 1.177); t=5, 6 arm 0 (+1, +1)
    means = np.array([[1.0, 0.0, 0.0]])
    totals = [BANDIT_BASELINES["ucb1"](means, n, np.random.default_rng(0), c=1.0)[0] for n in range(1, 7)]
    assert totals == [1, 2, 2, 2, 3, 4]
    assert BANDIT_BASELINES["ucb1"](means, 6, np.random.default_rng(0), c=0.0)[0] == 6   # c = 0: greedy


def test_gittins_beats_greedy_and_thompson_on_the_same_draws():
    """Near Bayes-optimal (Gittins 1979): clearly above greedy and TS at n = 100, k = 10 (paper:
    82.8 vs 77.1 and 76.7; same reward noise for all three)."""
    means = draw_bandits(np.random.default_rng(4), 300, 10)
    run = {m: BANDIT_BASELINES[m](means, 100, np.random.default_rng(5), **FAST.get(m, {})) for m in
           ("gittins", "greedy", "ts")}
    assert run["gittins"].mean() > run["greedy"].mean() + 2 and run["gittins"].mean() > run["ts"].mean() + 2


def test_regret_by_hand():
    means = np.array([[0.2, 0.7], [0.5, 0.1]])
    np.testing.assert_allclose(regret(means, [3.0, 4.0], 10), [4.0, 1.0])


def test_evaluate_is_deterministic_and_tunes_on_its_grids(monkeypatch):
    monkeypatch.setitem(bb.GRIDS, "gittins", {"gamma": (0.5, 0.9)})   # small tables: a fast test
    monkeypatch.setitem(bb.BANDIT_BASELINES, "gittins", functools.partial(bb.gittins, gamma=0.9))
    means = draw_bandits(np.random.default_rng(6), 50, 3)
    first = evaluate_bandit_baselines(means, 20, seed=7)
    assert first == evaluate_bandit_baselines(means, 20, seed=7)
    assert set(first) == set(BANDIT_BASELINES)
    for name, (mean, se, chosen) in first.items():
        assert 0 <= mean <= 20 and se > 0
        for param, value in chosen.items():
            assert value in bb.GRIDS[name][param]
    assert first["ucb1"][2].keys() == {"c"} and first["greedy"][2] == {}
    assert evaluate_bandit_baselines(means, 20, seed=7, tune=False)["eps_greedy"][2] == {}


def test_ots_is_the_authors_map_of_posterior_draws(monkeypatch):
    """One draw is Thompson sampling (same random stream); with several, each instance's scores are the
    most probable of the draws (summed Beta log-density): checked against a per-instance computation."""
    import scipy.stats

    means = draw_bandits(np.random.default_rng(3), 200, 5)
    np.testing.assert_array_equal(bb.ots(means, 30, np.random.default_rng(4), samples=1),
                                  bb.ts(means, 30, np.random.default_rng(4)))
    s, f = np.random.default_rng(5).integers(0, 6, (2, 200, 5)).astype(float)
    draws = np.random.default_rng(6).beta(1 + s, 1 + f, size=(7, 200, 5))
    expected = [draws[np.argmax([scipy.stats.beta.logpdf(d[i], 1 + s[i], 1 + f[i]).sum() for d in draws]), i]
                for i in range(200)]
    scores = []
    monkeypatch.setattr(bb, "_play", lambda means, n, rng, score: scores.append(score))
    bb.ots(means, 1, np.random.default_rng(0), samples=7)
    np.testing.assert_array_equal(scores[0](s, f, 1, np.random.default_rng(6)), np.array(expected))
    with pytest.raises(ConfigError):
        bb.ots(means, 10, np.random.default_rng(0), samples=0)
