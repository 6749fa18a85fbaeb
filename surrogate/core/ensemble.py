"""Acting rules of a Q-ensemble and bootstrap masks: pure functions on ``[K, B, A]`` Q-values.

``q[k, b, a]`` is head ``k``'s ``Q_k(s_b, a)``. Chen, Sidor, Abbeel & Schulman 2017 ("UCB Exploration
via Q-Ensembles", arXiv 1706.01502) act by an upper confidence bound over the ensemble (their
Algorithm 2) and compare it with ensemble voting (their Algorithm 1) and bootstrapped DQN (Osband,
Blundell, Pritzel & Van Roy 2016, "Deep Exploration via Bootstrapped DQN"), whose heads are each
trained on the transitions their Bernoulli bootstrap mask includes (Osband et al. 2016, sec. 3 and
Algorithm 1: ``m_t ~ M``, here ``M = Bernoulli(p)^K``).
"""
import chex
import jax
import jax.numpy as jnp

from surrogate.core.distributions import uniform_from_bits


def ensemble_mean_std(q, ddof: int = 0):
    """Empirical mean and standard deviation over the heads (axis 0) of ``q [K, ...]``.

    ``ddof = 0`` divides the variance by ``K`` (the ensemble's own spread, Chen et al. 2017's
    "empirical standard deviation" of ``{Q_k(s, a)}``); ``ddof = 1`` gives the unbiased estimate,
    ``sqrt(K / (K - 1))`` times larger (1.054 for K = 10)."""
    k = q.shape[0]
    if not 0 <= ddof < k:
        raise ValueError(f"ddof must be in [0, K) with K = {k} heads, got {ddof}.")
    mean = q.mean(axis=0)
    var = ((q - mean) ** 2).sum(axis=0) / (k - ddof)
    return mean, jnp.sqrt(var)


def ucb_scores(q, lam: float, ddof: int = 0):
    """``mu(s, a) + lam * sigma(s, a)`` with ``mu``, ``sigma`` the heads' empirical mean and standard
    deviation (Chen et al. 2017, Algorithm 2); ``q [K, B, A] -> [B, A]``."""
    chex.assert_rank(q, 3)
    mean, std = ensemble_mean_std(q, ddof)
    return mean + lam * std


def ucb_actions(q, lam: float, ddof: int = 0):
    """``a = argmax_a [mu(s, a) + lam * sigma(s, a)]`` (Chen et al. 2017, Algorithm 2; their Atari
    runs use lam = 0.1); ``q [K, B, A] -> [B]`` int32. ``lam = 0`` is the greedy action of the
    ensemble mean. Ties go to the lowest action index (``jnp.argmax``)."""
    return ucb_scores(q, lam, ddof).argmax(-1).astype(jnp.int32)


def vote_counts(q):
    """``[B, A]``: how many heads' greedy action (``argmax_a Q_k(s, a)``, ties to the lowest index) is ``a``."""
    chex.assert_rank(q, 3)
    return jax.nn.one_hot(q.argmax(-1), q.shape[-1], dtype=jnp.int32).sum(axis=0)


def vote_actions(q):
    """Majority vote of the heads' greedy actions (Chen et al. 2017, Algorithm 1, "ensemble voting";
    Osband et al. 2016 evaluate their ensemble this way); ``q [K, B, A] -> [B]`` int32.

    Ties, deterministic: among the actions with the most votes the lowest index wins; within a head,
    equal Q-values also pick the lowest index."""
    return vote_counts(q).argmax(-1).astype(jnp.int32)


def bootstrap_masks(key, shape, p: float):
    """Bernoulli(``p``) inclusion masks, float32 0/1 of ``shape`` (e.g. ``[transitions, K]``): entry
    ``[i, k]`` says whether head ``k`` trains on transition ``i`` (Osband et al. 2016, sec. 3: the mask
    ``m_t`` is drawn once, when the transition is stored). ``p = 1``: every head sees every transition
    (heads then differ only by their initialisation and minibatch order); ``p = 0.5``: a double-or-nothing
    bootstrap."""
    return bootstrap_masks_from_bits(jax.random.bits(key, tuple(shape), jnp.uint32), p)


def bootstrap_masks_from_bits(bits, p: float):
    """``bootstrap_masks`` from uint32 random words already drawn, one per entry: ``uniform < p``
    (exactly all ones for ``p = 1``, all zeros for ``p = 0``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the inclusion probability p must be in [0, 1], got {p}.")
    return (uniform_from_bits(bits) < p).astype(jnp.float32)


def masked_head_loss(losses, masks):
    """The ensemble loss ``sum_k (1 / B) sum_b m[k, b] * l[k, b]`` of per-head, per-transition losses
    ``l [K, B]`` and masks ``m [K, B]``: each head's loss is its masked transitions' summed loss over the
    minibatch size (a transition its mask leaves out contributes nothing, not even to the normaliser),
    and the heads' losses are summed, so every head's parameters get their own loss's full gradient, as
    a lone DQN's would. Osband et al. 2016 train each head on its own bootstrapped loss and normalise the
    gradient entering the shared torso by 1/K: ``scale_gradient`` on the torso's output does that. (A mean
    over the heads instead would shrink every head's gradient K-fold, which an optimiser with a large
    epsilon, MinAtar's centered RMSprop with 0.01, turns into a K-fold smaller step.)"""
    chex.assert_equal_shape([losses, masks])
    chex.assert_rank(losses, 2)
    return (losses * masks).mean(axis=1).sum()


def scale_gradient(x, scale: float):
    """``x`` unchanged in the forward pass (exactly); ``scale`` times the incoming gradient backwards."""
    frozen = jax.lax.stop_gradient(x)
    return frozen + scale * (x - frozen)
