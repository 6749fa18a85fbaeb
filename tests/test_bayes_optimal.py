"""The exact Bayes-optimal bandit policy: hand-computed values, agreement between its value and its play,
and that no baseline beats it in expectation."""
import numpy as np
import pytest

from surrogate.errors import ConfigError
from surrogate.rl2 import bandit_baselines as bb
from surrogate.rl2.bayes_optimal import bayes_optimal, bayes_optimal_value


def test_values_by_hand():
    assert bayes_optimal_value(2, 1) == pytest.approx(0.5)
    # pull an arm (1/2); after a success keep it (posterior mean 2/3), after a failure take the fresh one (1/2)
    assert bayes_optimal_value(2, 2) == pytest.approx(0.5 + 0.5 * 2 / 3 + 0.5 * 0.5)
    # more arms never hurt, and with n pulls at most n arms can be used
    assert bayes_optimal_value(3, 4) >= bayes_optimal_value(2, 4)
    assert bayes_optimal_value(5, 4) == pytest.approx(bayes_optimal_value(4, 4))


def test_playing_the_policy_scores_its_value_and_beats_the_baselines():
    k, n, num = 3, 5, 20_000
    means = bb.draw_bandits(np.random.default_rng(0), num, k)
    totals = bayes_optimal(means, n, np.random.default_rng(1))
    se = totals.std(ddof=1) / np.sqrt(num)
    assert abs(totals.mean() - bayes_optimal_value(k, n)) < 3 * se
    for name in ("greedy", "ucb1", "ts", "gittins"):  # same draws and reward noise: a paired comparison
        other = bb.BANDIT_BASELINES[name](means, n, np.random.default_rng(1))
        diff = totals - other
        assert diff.mean() > -3 * diff.std(ddof=1) / np.sqrt(num), name


def test_long_trials_are_refused():
    with pytest.raises(ConfigError, match="n <= 12"):
        bayes_optimal_value(5, 100)
