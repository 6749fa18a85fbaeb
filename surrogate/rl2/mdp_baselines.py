"""The tabular-MDP baselines of RL² (Duan et al. 2016, arXiv 1611.02779, Sec. 4.2.2 and Table 2).

The paper's MDPs (``draw_mdps``): 10 states, 5 actions, mean rewards ~ N(1, 1) with unit-variance Gaussian
rewards, transitions ~ flat Dirichlet, episodes of 10 steps from the first state; a cell of Table 2 is
the total reward over ``n`` episodes averaged over many MDPs. Every baseline below keeps per-instance
counts and is vectorised over instances with NumPy: the loop is only ``n_episodes x horizon`` (<= 1000)
steps of array operations over all instances plus one backward induction per episode, so NumPy needs no
compilation per setting and hyperparameter (JAX would compile each and gain little on 10x5 tables).

Priors (the paper does not state them): a known-variance Normal on each mean reward, prior N(0, 1)
with noise variance 1, and a flat Dirichlet on each transition row. The reward prior is centred at 0,
not at the generator's 1: with N(0, 1), PSRL and greedy reproduce the paper's cells (n = 10 / 100 on
1000 MDPs: PSRL 138.0 / 1936.6 against 138.1 / 1939.5, greedy 137.0 / 1547.9 against 134.8 / 1578.5),
whereas the generator's own N(1, 1) makes greedy a far stronger baseline than the paper's (154 / 1880).
The Bayesian methods (``BAYESIAN``) take ``prior_mean=1.0`` for the exactly Bayesian variant. (BEB's
planning reward, (prior_mean + sum r + beta) / (1 + n), depends on prior_mean + beta only: its tuned beta
absorbs the prior.)
``random`` acts uniformly; ``greedy`` / ``eps_greedy`` follow the posterior-mean MDP's
finite-horizon optimal policy (with probability epsilon a uniform action); ``psrl`` (Osband et al. 2013)
samples one MDP from the posterior at each episode start; ``opsrl`` (Osband & Van Roy 2017) samples J
and plans on their optimistic merge, Q_h(s,a) = max_j [R_j(s,a) + P_j(s,a) . V_{h+1}] (as BOSS, Asmuth et
al. 2009); ``ucrl2`` (Jaksch et al. 2010) runs extended value iteration over H steps with the L1
confidence sets of its Eq. (3) (widths times a tuned ``scale``, since the paper's rewards are unbounded
Gaussians, not [0, 1]); ``beb`` (Kolter & Ng 2009) plans in the posterior-mean MDP with the bonus
beta / (1 + n(s, a)) added to the reward. Ties between actions are broken uniformly at random.
"""
from typing import NamedTuple

import numpy as np

from surrogate.errors import ConfigError

MDP_MEAN, MDP_VAR, NOISE_VAR = 1.0, 1.0, 1.0  # the paper's MDPs: mean rewards ~ N(1, 1), unit-variance rewards
PRIOR_MEAN, PRIOR_VAR = 0.0, 1.0  # the learners' prior on each mean reward (see the module docstring)
UCRL2_DELTA = 0.05
# Grids searched per setting by ``evaluate_mdp_baselines`` (the paper: "hyperparameters grid searched").
# The planners' defaults (used with tune=False) are the values tuning chose most often for n = 10..100.
GRIDS = {"random": {}, "psrl": {}, "opsrl": {"num_samples": (2, 4, 8, 16)},
         "ucrl2": {"scale": (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)},
         "beb": {"beta": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0)},
         "eps_greedy": {"epsilon": (0.02, 0.05, 0.1, 0.2, 0.3)}, "greedy": {}}


def draw_mdps(rng: np.random.Generator, num: int, num_states: int = 10, num_actions: int = 5):
    """The paper's random MDPs: ``(reward_means [I, S, A] ~ N(1, 1), transitions [I, S, A, S] ~ Dir(1))``."""
    if num < 1 or num_states < 1 or num_actions < 1:
        raise ConfigError(f"draw_mdps needs num, num_states, num_actions >= 1; "
                          f"got {num}, {num_states}, {num_actions}.")
    means = rng.normal(MDP_MEAN, np.sqrt(MDP_VAR), (num, num_states, num_actions))
    transitions = rng.dirichlet(np.ones(num_states), size=(num, num_states, num_actions))
    return means, transitions


def backward_induction(rewards, transitions, horizon: int) -> np.ndarray:
    """Finite-horizon optimal Q-values ``[..., H, S, A]``: Q_h = R + P V_{h+1}, V_h = max_a Q_h, V_H = 0
    (Puterman 1994, Sec. 4.5). ``rewards [..., S, A]``, ``transitions [..., S, A, S]``."""
    v = np.zeros(rewards.shape[:-1])
    q = np.empty(rewards.shape[:-2] + (horizon,) + rewards.shape[-2:])
    for h in reversed(range(horizon)):
        q[..., h, :, :] = rewards + np.matmul(transitions, v[..., None, :, None])[..., 0]
        v = q[..., h, :, :].max(-1)
    return q


class Stats(NamedTuple):
    """Per-instance counts: visits n(s, a), reward sums, transition counts c(s, a, s')."""
    visits: np.ndarray  # [I, S, A]
    reward_sum: np.ndarray  # [I, S, A]
    counts: np.ndarray  # [I, S, A, S]


def empty_stats(num: int, num_states: int, num_actions: int) -> Stats:
    return Stats(np.zeros((num, num_states, num_actions)), np.zeros((num, num_states, num_actions)),
                 np.zeros((num, num_states, num_actions, num_states)))


def update_stats(stats: Stats, s, a, r, s_next) -> Stats:
    """Add one transition per instance (``s, a, r, s_next`` of shape ``[I]``); in place, returns ``stats``."""
    i = np.arange(len(s))
    stats.visits[i, s, a] += 1
    stats.reward_sum[i, s, a] += r
    stats.counts[i, s, a, s_next] += 1
    return stats


def posterior(stats: Stats, prior_mean: float | None = None, prior_var: float | None = None):
    """Conjugate posterior (known noise variance): mean reward ~ N(mean, var) with precision
    1/prior_var + n/NOISE_VAR and mean (prior_mean/prior_var + sum r/NOISE_VAR) / precision; each
    transition row ~ Dirichlet(1 + c(s, a, .)). Returns ``(mean, var, alpha)``; the prior defaults to
    ``PRIOR_MEAN, PRIOR_VAR``."""
    prior_mean = PRIOR_MEAN if prior_mean is None else prior_mean
    prior_var = PRIOR_VAR if prior_var is None else prior_var
    precision = 1.0 / prior_var + stats.visits / NOISE_VAR
    mean = (prior_mean / prior_var + stats.reward_sum / NOISE_VAR) / precision
    return mean, 1.0 / precision, 1.0 + stats.counts


def posterior_mean_mdp(stats: Stats, prior_mean: float | None = None):
    mean, _, alpha = posterior(stats, prior_mean)
    return mean, alpha / alpha.sum(-1, keepdims=True)


def sample_mdps(stats: Stats, rng: np.random.Generator, num_samples: int | None = None,
                prior_mean: float | None = None):
    """Posterior samples ``(R [I, (J,) S, A], P [I, (J,) S, A, S])``; Dirichlet via normalised Gammas."""
    mean, var, alpha = posterior(stats, prior_mean)
    if num_samples is not None:
        mean, var, alpha = (np.repeat(x[:, None], num_samples, axis=1) for x in (mean, var, alpha))
    rewards = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
    g = rng.standard_gamma(alpha)
    return rewards, g / g.sum(-1, keepdims=True)


def optimistic_transitions(p_hat, width, v):
    """The inner maximisation of extended value iteration (Jaksch et al. 2010, Fig. 2): the p maximising
    p . v subject to ||p - p_hat||_1 <= width. Adds min(width/2, 1 - p_hat) to the best state and removes
    the excess from the worst states first. ``p_hat [I, S, A, S]``, ``width [I, S, A]``, ``v [I, S]``.
    Sorting is done once per instance through ranks: ``worse[i, t, u]`` says t ranks below u."""
    rank = np.argsort(np.argsort(-v, axis=-1), axis=-1)  # 0 = the best next state
    worse = (rank[:, :, None] > rank[:, None, :]).astype(p_hat.dtype)  # [I, S, S]
    best = (rank == 0)[:, None, None, :]
    p_best = (p_hat * best).sum(-1)
    added = np.minimum(1.0, p_best + width / 2) - p_best  # = the excess to remove
    after = np.matmul(p_hat.reshape(len(v), -1, v.shape[-1]), worse).reshape(p_hat.shape)  # mass ranked below
    removed = np.minimum(p_hat, np.maximum(0.0, added[..., None] - after))
    return np.where(best, p_hat + added[..., None], p_hat - removed)


def extended_value_iteration(r_hat, r_width, p_hat, p_width, horizon: int) -> np.ndarray:
    """Optimistic Q ``[I, H, S, A]`` over the confidence set {|r - r_hat| <= r_width, ||p - p_hat||_1 <=
    p_width}: backward induction where each step takes the best reward and transition in the set."""
    v = np.zeros(r_hat.shape[:2])
    q = np.empty(r_hat.shape[:1] + (horizon,) + r_hat.shape[1:])
    for h in reversed(range(horizon)):
        p = optimistic_transitions(p_hat, p_width, v)
        q[:, h] = r_hat + r_width + np.matmul(p, v[:, None, :, None])[..., 0]
        v = q[:, h].max(-1)
    return q


def ucrl2_confidence(stats: Stats, steps: int, scale: float, delta: float = UCRL2_DELTA):
    """Jaksch et al. 2010, Eq. (3) times ``scale``: r_width = sqrt(7 log(2 S A t / delta) / (2 max(1, n))),
    p_width = sqrt(14 S log(2 A t / delta) / max(1, n)); empirical means (unvisited: reward 0, uniform)."""
    _, num_states, num_actions = stats.visits.shape
    n = np.maximum(1.0, stats.visits)
    t = max(1, steps)
    r_hat = stats.reward_sum / n
    p_hat = np.where(stats.visits[..., None] > 0, stats.counts / n[..., None], 1.0 / num_states)
    r_width = scale * np.sqrt(7 * np.log(2 * num_states * num_actions * t / delta) / (2 * n))
    p_width = scale * np.sqrt(14 * num_states * np.log(2 * num_actions * t / delta) / n)
    return r_hat, r_width, p_hat, p_width


# Planners: (stats, rng, steps so far, horizon, **hyperparameters) -> Q [I, H, S, A] for the next episode.
def _plan_greedy(stats, rng, steps, horizon, prior_mean=None):
    return backward_induction(*posterior_mean_mdp(stats, prior_mean), horizon)


def _plan_psrl(stats, rng, steps, horizon, prior_mean=None):
    return backward_induction(*sample_mdps(stats, rng, None, prior_mean), horizon)


def _plan_opsrl(stats, rng, steps, horizon, num_samples=8, prior_mean=None):
    rewards, transitions = sample_mdps(stats, rng, num_samples, prior_mean)  # [I, J, S, A], [I, J, S, A, S]
    v = np.zeros(rewards.shape[:1] + rewards.shape[2:3])
    q = np.empty(rewards.shape[:1] + (horizon,) + rewards.shape[2:])
    for h in reversed(range(horizon)):
        q[:, h] = (rewards + np.matmul(transitions, v[:, None, None, :, None])[..., 0]).max(1)
        v = q[:, h].max(-1)
    return q


def _plan_ucrl2(stats, rng, steps, horizon, scale=0.3):
    return extended_value_iteration(*ucrl2_confidence(stats, steps, scale), horizon)


def _plan_beb(stats, rng, steps, horizon, beta=2.0, prior_mean=None):
    mean, transitions = posterior_mean_mdp(stats, prior_mean)
    return backward_induction(mean + beta / (1.0 + stats.visits), transitions, horizon)


_PLANNERS = {"random": None, "psrl": _plan_psrl, "opsrl": _plan_opsrl, "ucrl2": _plan_ucrl2,
             "beb": _plan_beb, "eps_greedy": _plan_greedy, "greedy": _plan_greedy}
BAYESIAN = ("psrl", "opsrl", "beb", "eps_greedy", "greedy")  # these also take ``prior_mean`` (not tuned)


def _check(name, reward_means, transitions, n_episodes, horizon, hyperparameters):
    if name not in _PLANNERS:
        raise ConfigError(f"Unknown MDP baseline {name!r}; use one of {sorted(_PLANNERS)}.")
    allowed = set(GRIDS[name]) | ({"prior_mean"} if name in BAYESIAN else set())
    if set(hyperparameters) - allowed:
        raise ConfigError(f"{name} takes hyperparameters {sorted(allowed) or 'none'}, "
                          f"got {sorted(hyperparameters)}.")
    if reward_means.ndim != 3 or transitions.shape != reward_means.shape + reward_means.shape[1:2]:
        raise ConfigError(f"Need reward_means [I, S, A] and transitions [I, S, A, S]; got "
                          f"{reward_means.shape} and {transitions.shape}.")
    if n_episodes < 1 or horizon < 1:
        raise ConfigError(f"Need n_episodes >= 1 and horizon >= 1; got {n_episodes}, {horizon}.")
    bad = {"epsilon": lambda x: not 0 <= x <= 1, "num_samples": lambda x: int(x) != x or x < 1,
           "scale": lambda x: x <= 0, "beta": lambda x: x < 0, "prior_mean": lambda x: not np.isfinite(x)}
    for key, value in hyperparameters.items():
        if bad[key](value):
            raise ConfigError(f"{name}: invalid {key}={value}.")


def episode_returns(name: str, reward_means, transitions, n_episodes: int, horizon: int,
                    rng: np.random.Generator, **hyperparameters) -> np.ndarray:
    """Returns ``[I, n_episodes]`` of baseline ``name`` run on each instance for ``n_episodes`` episodes of
    ``horizon`` steps from state 0, rewards drawn N(mean, NOISE_VAR); the learner's counts persist across
    episodes and it replans at each episode start."""
    reward_means, transitions = np.asarray(reward_means, float), np.asarray(transitions, float)
    _check(name, reward_means, transitions, n_episodes, horizon, hyperparameters)
    num, num_states, num_actions = reward_means.shape
    epsilon = hyperparameters.pop("epsilon", 0.1 if name == "eps_greedy" else 0.0)
    plan = _PLANNERS[name]
    cdf = np.cumsum(transitions, axis=-1)
    stats, i = empty_stats(num, num_states, num_actions), np.arange(num)
    returns = np.zeros((num, n_episodes))
    for k in range(n_episodes):
        q = None if plan is None else plan(stats, rng, k * horizon, horizon, **hyperparameters)
        s = np.zeros(num, dtype=int)
        for h in range(horizon):
            if q is None:
                a = rng.integers(num_actions, size=num)
            else:
                qa = q[i, h, s]
                ties = qa >= qa.max(-1, keepdims=True) - 1e-12
                a = np.argmax(ties * rng.random((num, num_actions)), axis=-1)  # uniform among the best
                if epsilon > 0:
                    explore = rng.random(num) < epsilon
                    a = np.where(explore, rng.integers(num_actions, size=num), a)
            r = reward_means[i, s, a] + np.sqrt(NOISE_VAR) * rng.standard_normal(num)
            s_next = np.minimum((rng.random(num)[:, None] > cdf[i, s, a]).sum(-1), num_states - 1)
            update_stats(stats, s, a, r, s_next)
            returns[:, k] += r
            s = s_next
    return returns


def _baseline(name):
    def total(reward_means, transitions, n_episodes, horizon, rng, **hyperparameters):
        return episode_returns(name, reward_means, transitions, n_episodes, horizon, rng, **hyperparameters).sum(-1)
    total.__name__ = name
    total.__doc__ = f"Total reward [I] of {name!r} over n_episodes (see ``episode_returns``)."
    return total


MDP_BASELINES = {name: _baseline(name) for name in _PLANNERS}


def _grid_points(name):
    grid = GRIDS[name]
    if not grid:
        return [{}]
    (key, values), = grid.items()
    return [{key: v} for v in values]


def evaluate_mdp_baselines(reward_means, transitions, n_episodes: int, horizon: int, seed: int,
                           tune: bool = True, tuning_instances: int = 200, names=None) -> dict:
    """``{name: (mean_total, std_err, chosen_hyperparameters)}`` on the given instances.

    With ``tune``, each method's hyperparameter is chosen from ``GRIDS`` by the best mean total on
    ``tuning_instances`` separate paper-style MDPs (``draw_mdps`` of the same S, A, seeded by ``(seed, 1)``;
    every grid point sees the same instances and random stream), then evaluated once on the given
    instances (stream ``(seed, 2, index of the method in MDP_BASELINES)``). Without ``tune``: each
    function's default. UCRL2's score is bimodal in ``scale`` (peaks near 0.05 and 0.3), hence its grid."""
    reward_means, transitions = np.asarray(reward_means, float), np.asarray(transitions, float)
    names = list(MDP_BASELINES) if names is None else list(names)
    _, num_states, num_actions = reward_means.shape
    tune_means, tune_transitions = draw_mdps(np.random.default_rng([seed, 1]), tuning_instances,
                                             num_states, num_actions)
    results = {}
    for name in names:
        _check(name, reward_means, transitions, n_episodes, horizon, {})
        chosen, points = {}, _grid_points(name)
        if tune and len(points) > 1:
            scores = [MDP_BASELINES[name](tune_means, tune_transitions, n_episodes, horizon,
                                          np.random.default_rng([seed, 3]), **p).mean() for p in points]
            chosen = points[int(np.argmax(scores))]
        totals = MDP_BASELINES[name](reward_means, transitions, n_episodes, horizon,
                                     np.random.default_rng([seed, 2, list(MDP_BASELINES).index(name)]), **chosen)
        results[name] = (float(totals.mean()), float(totals.std(ddof=1) / np.sqrt(len(totals))), chosen)
    return results
