"""The bandit baselines of RL² (Duan et al. 2016, Table 1), vectorised over instances.

A task is a ``k``-armed Bernoulli bandit whose arm means are drawn from Uniform[0, 1]; a baseline
pulls ``n`` times and scores its total reward. Every policy here keeps, per arm, the counts of
successes ``s`` and failures ``f`` and pulls the arm with the largest score (ties: the lowest arm,
which costs nothing as the arms are exchangeable a priori):

- ``random``: a uniformly random arm.
- ``gittins``: the Gittins index of the posterior Beta(1 + s, 1 + f) (:mod:`surrogate.rl2.gittins`),
  at the discount ``gamma`` chosen per setting (the paper: "the best approximation per setting").
- ``ts``: Thompson sampling (Thompson 1933), a draw from Beta(1 + s, 1 + f).
- ``ots``: "optimistic Thompson sampling" as the paper's authors ran it (their rllab sandbox
  ``neural_learner`` bandit baselines, ``OptimisticThompsonSampling``): of ``samples`` joint draws
  from the posterior keep the most probable one (the largest summed Beta log-density) and pull its
  best arm; ``samples`` tuned per setting. (May et al. 2012's ``max(draw, posterior mean)`` is a
  different rule: on our draws it lands 1-9% below the paper's OTS column; this one within ~1%.)
- ``ucb1``: UCB1 (Auer et al. 2002, Fig. 1) with the paper's Beta(1, 1) initialisation: counts
  start as one success in two pulls, so ``(1 + s) / (2 + m) + c * sqrt(2 ln t / (2 + m))`` at
  round ``t = 1..n`` with ``m = s + f`` pulls of the arm; ``c`` scales the bonus (``c = 1``: UCB1).
- ``eps_greedy``: the posterior mean ``(1 + s) / (2 + m)`` (Beta(1, 1) initialisation), with
  probability ``eps`` a uniformly random arm instead.
- ``greedy``: the posterior mean.

Each policy is ``fn(means [I, k], n, rng, **hyperparameters) -> totals [I]``. The rewards come
from uniforms drawn first (``reward_t = u[t] < means[arm_t]``), so one seed gives every method the
same reward noise (common random numbers), and the result is deterministic given the rng.
"""
import numpy as np
import scipy.stats

from surrogate.errors import ConfigError
from surrogate.rl2.gittins import gittins_lookup

# Hyperparameter grids, searched per setting on separate tuning instances. UCB1's c and
# epsilon use the authors' grids (0, 0.1, ..., 1; their rllab sandbox `neural_learner`
# baselines). Gittins' gamma runs from myopic to an effective horizon of 200 pulls; 0.999 was
# within noise of 0.995 at n = 500 (+0.4, +0.6, -0.9 for k = 10, 5, 50) and its table alone
# takes ~25 s, so it is left out.
GRIDS = {
    "gittins": {"gamma": (0.5, 0.7, 0.9, 0.95, 0.99, 0.995)},
    "ucb1": {"c": tuple(round(0.1 * i, 1) for i in range(11))},
    "ots": {"samples": (1, 2, 5, 10, 20)},
    "eps_greedy": {"eps": tuple(round(0.1 * i, 1) for i in range(11))},
}


def _check(means, n):
    means = np.asarray(means, dtype=float)
    if means.ndim != 2 or means.shape[1] < 2:
        raise ConfigError(f"means of shape {means.shape}: pass [instances, k] with k >= 2 arms "
                          "(e.g. draw_bandits(rng, num, k))")
    if np.any((means < 0) | (means > 1)):
        raise ConfigError("Bernoulli means must lie in [0, 1]")
    if int(n) != n or n < 1:
        raise ConfigError(f"n={n}: pass the number of pulls, an integer >= 1")
    return means, int(n)


def draw_bandits(rng: np.random.Generator, num: int, k: int) -> np.ndarray:
    """``num`` bandits of ``k`` Bernoulli arms with means ~ Uniform[0, 1], as in Duan et al. (2016)."""
    if k < 2:
        raise ConfigError(f"k={k}: a bandit needs k >= 2 arms")
    if num < 1:
        raise ConfigError(f"num={num}: draw at least one bandit")
    return rng.uniform(0.0, 1.0, size=(num, k))


def _play(means, n, rng, score):
    """Run the index policy ``argmax score(successes, failures, t, rng)`` for ``n`` pulls; totals [I]."""
    means, n = _check(means, n)
    num, k = means.shape
    noise = rng.random((n, num))                   # reward noise first: common to every method
    rows = np.arange(num)
    succ = np.zeros((num, k))
    fail = np.zeros((num, k))
    total = np.zeros(num)
    for t in range(n):
        arm = np.argmax(score(succ, fail, t + 1, rng), axis=1)
        reward = noise[t] < means[rows, arm]
        succ[rows, arm] += reward
        fail[rows, arm] += ~reward
        total += reward
    return total


def _mean(succ, fail):
    return (1.0 + succ) / (2.0 + succ + fail)


def random(means, n, rng):
    """Uniformly random pulls: expected total ``n * mean(means)``."""
    return _play(means, n, rng, lambda s, f, t, r: r.random(s.shape))


def greedy(means, n, rng):
    """The arm with the largest posterior mean under Beta(1, 1)."""
    return _play(means, n, rng, lambda s, f, t, r: _mean(s, f))


def eps_greedy(means, n, rng, eps: float = 0.1):
    """Greedy on the posterior mean; with probability ``eps`` a uniformly random arm."""
    if not 0.0 <= eps <= 1.0:
        raise ConfigError(f"eps={eps}: pass a probability in [0, 1]")

    def score(s, f, t, r):
        explore = r.random(s.shape[0]) < eps
        return np.where(explore[:, None], r.random(s.shape), _mean(s, f))
    return _play(means, n, rng, score)


def ucb1_index(succ, fail, t: int, c: float = 1.0):
    """UCB1's index at round ``t`` (Auer et al. 2002, Fig. 1), counts initialised as Beta(1, 1):
    ``(1 + s) / (2 + m) + c * sqrt(2 ln t / (2 + m))`` with ``m = s + f`` pulls of the arm."""
    return _mean(succ, fail) + c * np.sqrt(2.0 * np.log(t) / (2.0 + succ + fail))


def ucb1(means, n, rng, c: float = 1.0):
    """UCB1 (Auer et al. 2002) with Beta(1, 1)-initialised counts and bonus scale ``c``."""
    if c < 0:
        raise ConfigError(f"c={c}: the UCB1 bonus scale must be >= 0")
    return _play(means, n, rng, lambda s, f, t, r: ucb1_index(s, f, t, c))


def ts(means, n, rng):
    """Thompson sampling: one draw from each arm's Beta(1 + s, 1 + f) posterior."""
    return _play(means, n, rng, lambda s, f, t, r: r.beta(1.0 + s, 1.0 + f))


def ots(means, n, rng, samples: int = 5):
    """The RL² authors' optimistic Thompson sampling: of ``samples`` joint posterior draws, the most
    probable under Beta(1 + s, 1 + f) (summed log-density over the arms); its argmax arm."""
    if samples < 1:
        raise ConfigError(f"samples={samples}: pass at least 1 posterior draw")

    def score(s, f, t, r):
        a, b = 1.0 + s, 1.0 + f
        draws = r.beta(a, b, size=(samples,) + s.shape)             # [S, I, k]
        log_density = scipy.stats.beta.logpdf(draws, a, b).sum(-1)   # [S, I]
        return draws[log_density.argmax(0), np.arange(s.shape[0])]
    return _play(means, n, rng, score)


def gittins(means, n, rng, gamma: float = 0.99):
    """The arm with the largest Gittins index of Beta(1 + s, 1 + f) at discount ``gamma``.

    Bayes-optimal for the gamma-discounted infinite bandit (Gittins 1979); for ``n`` undiscounted
    pulls gamma is the approximation, chosen per setting from ``GRIDS['gittins']``.
    """
    means, n = _check(means, n)
    table = gittins_lookup(n + 2, gamma)
    return _play(means, n, rng, lambda s, f, t, r: table[1 + s.astype(int), 1 + f.astype(int)])


BANDIT_BASELINES = {
    "random": random, "gittins": gittins, "ts": ts, "ots": ots,
    "ucb1": ucb1, "eps_greedy": eps_greedy, "greedy": greedy,
}


def regret(means, totals, n):
    """Per-instance regret against always pulling the best arm: ``n * max(means) - total``."""
    means, n = _check(means, n)
    return n * means.max(axis=1) - np.asarray(totals, dtype=float)


def evaluate_bandit_baselines(means, n: int, seed: int, tune: bool = True):
    """``{name: (mean total, standard error, chosen hyperparameters)}`` on ``means`` [I, k].

    With ``tune``, each method's hyperparameter is the best of its grid in ``GRIDS`` on
    ``len(means)`` separate tuning bandits drawn from ``seed`` (the paper: "hyperparameters grid
    searched per setting"); otherwise the defaults. Deterministic given ``seed``: every method is
    evaluated with the same reward noise.
    """
    means, n = _check(means, n)
    num, k = means.shape
    tune_means = draw_bandits(np.random.default_rng([seed, 1]), num, k)
    results = {}
    for name, fn in BANDIT_BASELINES.items():
        chosen = {}
        if tune and name in GRIDS:
            (param, values), = GRIDS[name].items()
            scores = [fn(tune_means, n, np.random.default_rng([seed, 2]), **{param: v}).mean() for v in values]
            chosen = {param: values[int(np.argmax(scores))]}
        totals = fn(means, n, np.random.default_rng([seed, 0]), **chosen)
        results[name] = (float(totals.mean()), float(totals.std(ddof=1) / np.sqrt(num)), chosen)
    return results
