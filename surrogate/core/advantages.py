"""Advantage estimators: discounted returns and GAE(gamma, lambda).

Conventions (time-major, arrays of shape ``[T, ...]``): ``values[t] = V(s_t)``,
``next_values[t] = V(s_{t+1})`` where ``s_{t+1}`` is the state the transition really
reached (the final observation when an episode ended at ``t``, not the reset one),
``terminations[t]`` is a true terminal (no bootstrap) and ``dones[t]`` marks any
episode end, terminal or truncated (time limit), after which the next step belongs
to a new episode.
"""
import chex
import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminations, dones, gamma: float, lam: float):
    """Generalized advantage estimation, Schulman et al. 2016, eq. (16).

    ``delta_t = r_t + gamma * (1 - term_t) * V(s_{t+1}) - V(s_t)`` (eq. 10) and
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}``, so a truncated episode
    bootstraps from the value of its final state but passes no credit across the reset.
    Returns ``(advantages, value_targets)`` with ``value_targets = advantages + values``
    (the TD(lambda) return).
    """
    chex.assert_equal_shape([rewards, values, next_values, terminations, dones])
    not_term = 1.0 - terminations.astype(values.dtype)
    not_done = 1.0 - dones.astype(values.dtype)
    deltas = rewards + gamma * not_term * next_values - values

    def backward(carry, x):
        delta, nd = x
        carry = delta + gamma * lam * nd * carry
        return carry, carry

    _, adv = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return adv, adv + values


def discounted_returns(rewards, terminations, dones, next_values, gamma: float):
    """Monte-Carlo discounted return ``R_t = r_t + gamma * R_{t+1}`` within episodes.

    Equals ``gae(..., lam=1) + values``: a truncated episode (or the end of the batch)
    bootstraps from ``next_values``; a terminated one from zero.
    """
    not_term = 1.0 - terminations.astype(rewards.dtype)
    not_done = 1.0 - dones.astype(rewards.dtype)

    def backward(carry, x):
        r, nt, nd, nv = x
        # inside an episode carry is R_{t+1}; at an episode end use the bootstrap value
        ret = r + gamma * nt * (nd * carry + (1.0 - nd) * nv)
        return ret, ret

    last = next_values[-1]
    _, ret = jax.lax.scan(backward, last, (rewards, not_term, not_done, next_values), reverse=True)
    return ret
