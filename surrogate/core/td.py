"""Temporal-difference targets for Q-learning, the Huber loss and Polyak averaging.

Conventions as in :mod:`surrogate.core.advantages`: ``terminations`` marks a true
terminal state (no bootstrap), ``dones`` any episode end, terminal or truncated by a
time limit; a truncated transition bootstraps from the state it really reached (the
final observation, not the reset one).
"""
import chex
import jax
import jax.numpy as jnp


def q_targets(rewards, terminations, next_q_target, next_q_online=None, *, gamma: float):
    """One-step Q-learning targets ``y = r + gamma * (1 - term) * Q_target(s', a*)``.

    DQN, Mnih et al. 2015, eq. (3) and Algorithm 1: ``a* = argmax_a Q_target(s', a)``.
    With ``next_q_online`` it is double DQN, van Hasselt et al. 2016, eq. (4):
    ``a* = argmax_a Q_online(s', a)`` evaluated by the target network.
    ``rewards``/``terminations``: ``[B]``; ``next_q_*``: ``[B, A]``. Truncated (time-limit)
    transitions are not terminations: they bootstrap from ``s'``, the final observation.
    """
    chex.assert_rank(next_q_target, 2)
    chex.assert_equal_shape([rewards, terminations])
    if next_q_online is None:
        next_v = next_q_target.max(axis=-1)
    else:
        chex.assert_equal_shape([next_q_target, next_q_online])
        a = next_q_online.argmax(axis=-1)
        next_v = jnp.take_along_axis(next_q_target, a[:, None], axis=-1)[:, 0]
    not_term = 1.0 - terminations.astype(next_v.dtype)
    return rewards + gamma * not_term * next_v


def soft_value(q, tau: float, log_prior=None):
    """``V(s) = tau * log E_{a ~ prior}[exp(Q(s, a) / tau)]`` over the last axis.

    Schulman, Chen & Abbeel 2017 ("Equivalence Between Policy Gradients and Soft Q-Learning"), sec. 2,
    eq. (9); with the uniform prior (``log_prior=None``) ``tau * logsumexp(Q / tau) - tau * log |A|``;
    ``tau -> 0`` gives ``max_a Q``. ``log_prior``: ``log pi_bar(a | s)``, broadcast against ``q``.
    """
    log_prior = -jnp.log(q.shape[-1]) if log_prior is None else log_prior
    return tau * jax.nn.logsumexp(q / tau + log_prior, axis=-1)


def boltzmann_log_probs(q, tau: float, log_prior=None):
    """``log pi(a | s)`` of the Boltzmann policy ``pi = prior * exp((Q - V) / tau)`` (ibid., eq. (10)),
    so that ``Q = V + tau * log(pi / prior)`` holds exactly (the paper's parametrization, sec. 4)."""
    log_prior = -jnp.log(q.shape[-1]) if log_prior is None else log_prior
    return jax.nn.log_softmax(q / tau + log_prior, axis=-1)


def soft_q_targets(rewards, terminations, next_q_target, *, gamma: float, tau: float, log_prior=None):
    """One-step soft Q-learning targets ``y = r + gamma * (1 - term) * V_target(s')`` with the soft value
    ``V = tau * log E_prior exp(Q / tau)`` in place of DQN's max (ibid., eq. (11); Haarnoja et al. 2017)."""
    chex.assert_rank(next_q_target, 2)
    chex.assert_equal_shape([rewards, terminations])
    next_v = soft_value(next_q_target, tau, log_prior)
    return rewards + gamma * (1.0 - terminations.astype(next_v.dtype)) * next_v


def _shift(x, k: int, fill):
    """``x[t + k]`` along axis 0, ``fill`` past the end."""
    if k == 0:
        return x
    pad = jnp.full((k, *x.shape[1:]), fill, x.dtype)
    return jnp.concatenate([x[k:], pad], axis=0)


def n_step_targets(rewards, terminations, dones, bootstrap_values, gamma: float, n: int):
    """n-step returns ``G_t = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - term_{t+m-1}) V_{t+m-1}``.

    Sutton & Barto 2018, eq. (7.1) (n-step return; Mnih et al. 2016 and Hessel et al. 2018
    use it as the Q-learning target). All inputs are time-major ``[T, ...]``;
    ``bootstrap_values[t]`` is the value of the state reached after step ``t`` (e.g.
    ``max_a Q_target(s_{t+1}, a)``; at a truncation the final observation's). The sum stops
    after ``m = min(n, steps to the first episode end at or after t (inclusive), T - t)``
    steps; it bootstraps from ``bootstrap_values[t+m-1]`` unless step ``t+m-1`` terminated.
    """
    chex.assert_equal_shape([rewards, terminations, dones, bootstrap_values])
    T = rewards.shape[0]
    dtype = rewards.dtype
    term = terminations.astype(dtype)
    # a sum must stop at an episode end or at the last step of the batch
    stop = jnp.maximum(dones.astype(dtype), (jnp.arange(T) == T - 1).reshape((T,) + (1,) * (rewards.ndim - 1)))
    out = jnp.zeros_like(rewards)
    alive = jnp.ones_like(rewards)  # 1 while the sum from t has not stopped before step t+k
    for k in range(n):
        r, st = _shift(rewards, k, 0), _shift(stop, k, 1)
        tm, v = _shift(term, k, 0), _shift(bootstrap_values, k, 0)
        out = out + alive * gamma**k * r
        ends = st if k < n - 1 else jnp.ones_like(st)
        out = out + alive * ends * gamma ** (k + 1) * (1 - tm) * v
        alive = alive * (1 - st)
    return out


def huber_loss(x, delta: float = 1.0):
    """Huber 1964: ``0.5 x^2`` for ``|x| <= delta``, else ``delta * (|x| - 0.5 delta)``.

    Elementwise; its gradient is ``clip(x, -delta, delta)``, the error clipping of Mnih
    et al. 2015 (Methods, "clip the error term ... between -1 and 1").
    """
    a = jnp.abs(x)
    quad = jnp.minimum(a, delta)
    return 0.5 * quad**2 + delta * (a - quad)


def polyak(target, online, tau: float):
    """Polyak averaging of target-network parameters: ``tau * target + (1 - tau) * online``.

    ``tau`` is the fraction of the old target that is *kept* (rejax's ``polyak`` and
    ``optax.incremental_update(new=online, old=target, step_size=1 - tau)``): ``tau = 0``
    is DQN's hard copy (Mnih et al. 2015), ``tau = 0.995`` DDPG's soft update with its
    ``tau = 0.005`` (Lillicrap et al. 2016, Algorithm 1). Works on any matching pytrees.
    """
    return jax.tree.map(lambda t, o: tau * t + (1.0 - tau) * o, target, online)
