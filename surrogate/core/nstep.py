"""n-step transitions for a replay buffer (Sutton & Barto 2018, eq. 7.1; Mnih et al. 2016; the
"multi-step learning" of Hessel et al. 2018, Rainbow, eq. 2).

A stored n-step transition is ``(s_t, a_t, R_t, term, s_{t+m}, m)`` with

    R_t = sum_{k<m} gamma^k r_{t+k},   m = min(n, steps to the end of s_t's episode),

``term`` whether step ``t+m-1`` ended the episode in a true terminal (no bootstrap), and ``s_{t+m}``
the state the sum stopped at (at an episode end, the final observation, not the reset one), so that
the Q-learning target is ``R_t + gamma^m (1 - term) max_a Q_target(s_{t+m}, a)``. A time-limit
truncation stops the sum like a termination but bootstraps from its final observation.

Transitions are made at insertion from a time-major window of ``n - 1 + T`` steps: the ``n - 1``
steps kept from earlier iterations (``Window``) followed by the ``T`` new ones. Its first ``T``
positions have all ``n`` steps they may need inside the window and become transitions; the last
``n - 1`` are kept for the next iteration. Every step is stored exactly once, ``n - 1`` steps late,
whatever the rollout length (one env step per iteration included).
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from surrogate.core.td import n_step_targets, q_targets, soft_q_targets


class Transition(NamedTuple):
    """One replay item (Mnih et al. 2015, Algorithm 1: ``(s_t, a_t, r_t, s_{t+1})``); n-step ones
    ``(s_t, a_t, R_t, s_{t+m})`` with the horizon ``m``."""

    obs: Any
    action: Any
    reward: Any
    terminal: Any  # float: no bootstrap from next_obs
    next_obs: Any
    horizon: Any = 1  # int: the target is reward + gamma^horizon (1 - terminal) V(next_obs)


class Window(NamedTuple):
    """The last ``n - 1`` steps of each env, time-major ``[n - 1, num_envs, ...]``; ``valid [n - 1]``
    is false for the rows before the run's first step."""

    obs: Any
    actions: Any
    rewards: Any
    terminations: Any  # no bootstrap after this step
    dones: Any  # any episode end: the sum stops here
    next_obs: Any
    valid: Any


def init_window(n: int, num_envs: int, obs_shape, obs_dtype, action_dtype=jnp.int32) -> Window:
    z = lambda shape, dtype: jnp.zeros((n - 1, num_envs, *shape), dtype)
    return Window(z(obs_shape, obs_dtype), z((), action_dtype), z((), jnp.float32), z((), jnp.float32),
                  z((), jnp.float32), z(obs_shape, obs_dtype), jnp.zeros((n - 1,), bool))


def n_step_sums(rewards, terminations, dones, gamma: float, n: int):
    """For each of the first ``W - n + 1`` steps of a ``[W, N]`` window: ``(R_t, m_t, term_t)`` as in
    the module docstring (``m`` int32). ``R`` and ``gamma^m (1 - term)`` are ``core.td.n_step_targets``
    with bootstrap values 0 and 1 (a test checks the two against each other)."""
    W = rewards.shape[0]
    T = W - n + 1
    returns = n_step_targets(rewards, terminations, dones, jnp.zeros_like(rewards), gamma, n)[:T]
    alive = jnp.ones_like(rewards[:T])  # 1 while no episode end at t .. t + k
    horizon = jnp.ones_like(rewards[:T])
    for k in range(n - 1):
        alive = alive * (1.0 - dones[k:k + T].astype(rewards.dtype))
        horizon = horizon + alive
    m = horizon.astype(jnp.int32)
    last = jnp.arange(T)[:, None] + m - 1
    term = jnp.take_along_axis(terminations.astype(rewards.dtype), last, axis=0)
    return returns, m, term


def n_step_batch(window: Window, new: Window, gamma: float, n: int):
    """``(transitions, valid [T*N], window)``: the ``T`` new steps ``new`` (``[T, N, ...]``, ``valid``
    all true) appended to ``window``; transitions ``(obs, action, R, term, next_obs, m)`` flattened
    to ``[T * N, ...]`` (time-major), ``valid`` false where the start step is before the run's first,
    and the window of the last ``n - 1`` steps for the next call."""
    w = jax.tree.map(lambda a, b: jnp.concatenate([a, b.astype(a.dtype)], axis=0), window, new)
    T = new.rewards.shape[0]
    returns, m, term = n_step_sums(w.rewards, w.terminations, w.dones, gamma, n)
    last = jnp.arange(T)[:, None] + m - 1  # [T, N]: the step whose next_obs the sum stops at
    next_obs = jax.vmap(lambda x, i: x[i], in_axes=(1, 1), out_axes=1)(w.next_obs, last)
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    out = tuple(map(flat, (w.obs[:T], w.actions[:T], returns, term, next_obs, m)))
    valid = jnp.repeat(w.valid[:T], new.rewards.shape[1])
    return out, valid, jax.tree.map(lambda x: x[T:], w)


def n_step_q_targets(rewards, terminals, horizons, next_q_target, next_q_online=None, *, gamma: float,
                     soft_tau: float = 0.0):
    """Targets of replayed n-step transitions, ``y = R + gamma^m (1 - term) V(s_{t+m})`` with ``V`` DQN's
    ``max_a Q_target`` (Mnih et al. 2015, eq. 3), double DQN's ``Q_target(s, argmax_a Q_online)`` (van
    Hasselt et al. 2016, eq. 4) with ``next_q_online``, or with ``soft_tau > 0`` the soft value
    ``soft_tau log mean_a exp(Q_target / soft_tau)`` (Schulman, Chen & Abbeel 2017, eq. 11): the one-step
    targets of ``core.td`` with the discount ``gamma^m`` of each transition's horizon ``m``."""
    discount = gamma ** jnp.asarray(horizons, jnp.float32)
    if soft_tau > 0:
        return soft_q_targets(rewards, terminals, next_q_target, gamma=discount, tau=soft_tau)
    return q_targets(rewards, terminals, next_q_target, next_q_online, gamma=discount)


def rollout_transitions(window, obs, actions, rewards, terminals, dones, next_obs, gamma: float, n: int):
    """``(items, valid, window)`` of a ``[T, N]`` rollout, items ``(obs, action, R, term, next_obs, m)``
    flattened time-major to ``[T * N, ...]``: its one-step transitions (``m = 1``; ``valid`` None,
    ``window`` ()) for ``n = 1``, else ``n_step_batch``'s with ``window`` before them."""
    if n == 1:
        flat = lambda x: x.reshape(-1, *x.shape[2:])
        items = tuple(map(flat, (obs, actions, rewards, terminals, next_obs)))
        return (*items, jnp.ones(rewards.size, jnp.int32)), None, ()
    new = Window(obs, actions, rewards, terminals, dones.astype(jnp.float32), next_obs,
                 jnp.ones(rewards.shape[0], bool))
    return n_step_batch(window, new, gamma, n)
