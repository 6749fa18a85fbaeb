"""The Bayes-optimal policy of RL²'s bandits, exactly: ``n`` undiscounted pulls of ``k`` Bernoulli arms whose
means are drawn from Uniform[0, 1] (Duan et al. 2016, sec. 3.1), by dynamic programming over the posterior
counts (Bellman 1956, "A problem in the sequential design of experiments").

Gittins' index is optimal for the infinite discounted problem only; for a finite horizon the optimum is this
recursion over states = the multiset of (successes, failures) of the arms pulled so far (unpulled arms are
exchangeable under the prior, and so are arms with equal counts):

    V(state, 0) = 0,    V(state, t) = max over arms (s, f) of  p (1 + V(win, t - 1)) + (1 - p) V(lose, t - 1),
    p = (1 + s) / (2 + s + f)   (the posterior mean under Beta(1, 1)).

``bayes_optimal_value(k, n)`` is the best expected total any policy can reach on these tasks, the ceiling
for RL² and every baseline; ``bayes_optimal`` plays that policy on given draws. The states grow quickly with
``n`` (n = 10: ~10^4-10^5 states, seconds), so both are for ``n <= MAX_PULLS``.
"""
from functools import lru_cache

import numpy as np

from surrogate.errors import ConfigError
from surrogate.rl2.bandit_baselines import _check, _play

MAX_PULLS = 12


def _after(arms: tuple, arm: tuple, won: bool) -> tuple:
    """The state after pulling an arm with counts ``arm`` ((0, 0): a fresh one) out of the pulled ``arms``."""
    rest = list(arms)
    if arm != (0, 0):
        rest.remove(arm)
    s, f = arm
    return tuple(sorted(rest + [(s + 1, f) if won else (s, f + 1)]))


@lru_cache(maxsize=None)
def _value(k: int, arms: tuple, left: int) -> float:
    if left == 0:
        return 0.0
    return max(_q(k, arms, left, arm) for arm in _choices(k, arms))


def _choices(k: int, arms: tuple):
    return set(arms) | ({(0, 0)} if len(arms) < k else set())


def _q(k: int, arms: tuple, left: int, arm: tuple) -> float:
    """The expected total of pulling ``arm`` with ``left`` pulls to go, then playing optimally."""
    p = (1.0 + arm[0]) / (2.0 + arm[0] + arm[1])
    win, lose = _value(k, _after(arms, arm, True), left - 1), _value(k, _after(arms, arm, False), left - 1)
    return p * (1.0 + win) + (1.0 - p) * lose


def _check_size(k: int, n: int):
    if n > MAX_PULLS:
        raise ConfigError(f"n={n}: the exact Bayes-optimal policy is computed for n <= {MAX_PULLS} pulls only "
                          "(its states grow combinatorially); use the Gittins baseline for longer trials.")
    if k < 2:
        raise ConfigError(f"k={k}: a bandit needs k >= 2 arms")


def bayes_optimal_value(k: int, n: int) -> float:
    """The largest expected total reward of ``n`` pulls of ``k`` arms with Uniform[0, 1] means."""
    _check_size(k, n)
    return _value(k, (), n)


def bayes_optimal(means, n, rng):
    """Play the Bayes-optimal policy on ``means`` [I, k] (``rng``: the reward noise, as every baseline)."""
    means, n = _check(means, n)
    k = means.shape[1]
    _check_size(k, n)

    def score(succ, fail, t, _):
        out = np.empty(succ.shape)
        for i, (s_row, f_row) in enumerate(zip(succ.astype(int), fail.astype(int))):
            arms = tuple(sorted((s, f) for s, f in zip(s_row, f_row) if s + f > 0))
            q = {arm: _q(k, arms, n - t + 1, arm) for arm in _choices(k, arms)}
            out[i] = [q[(s, f)] for s, f in zip(s_row, f_row)]
        return out

    return _play(means, n, rng, score)
