"""Rollouts: a jitted ``lax.scan`` for JAX envs and a Python loop for Gymnasium vector envs.

Both return the same time-major ``Batch`` of *raw* observations; normalisation with the
statistics frozen at the end of the rollout is applied by the learner, so the policy that
is optimised and the one whose log-probabilities are the "old" ones agree exactly.
Both also keep the same ``EnvCarry`` (observation statistics, reward scaling and the
running undiscounted episode returns that feed the learning curve).
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogate.core.normalize import (
    RunningStats,
    ReturnNormState,
    init_return_norm,
    init_stats,
    normalize,
    scale_reward,
    update_stats,
)


class Batch(NamedTuple):
    """``[T, N, ...]`` arrays. ``next_obs[t]`` is the state step t reached (final obs at episode ends)."""

    obs: Any
    actions: Any
    rewards: Any  # scaled when reward normalisation is on
    terminations: Any
    dones: Any  # terminated or truncated
    next_obs: Any


class EpisodeStats(NamedTuple):
    """Undiscounted returns of the episodes that finished during one rollout."""

    return_sum: Any
    length_sum: Any
    count: Any


class EnvCarry(NamedTuple):
    env_state: Any  # None for host envs (their state lives in the vector env)
    obs: Any
    obs_stats: RunningStats
    return_norm: ReturnNormState
    episode_return: Any
    episode_length: Any


class RolloutSpec(NamedTuple):
    """What a rollout does besides stepping: normalisation and action clipping."""

    num_steps: int
    normalize_obs: bool
    normalize_reward: bool
    gamma: float
    action_low: Any = None  # clip continuous actions to these bounds before stepping
    action_high: Any = None


def init_carry(env_state, obs, xp) -> EnvCarry:
    n = obs.shape[0]
    stats = update_stats(init_stats(obs.shape[1:], xp), obs.astype(xp.float32))
    zeros = xp.zeros((n,), xp.float32)
    return EnvCarry(env_state, obs, stats, init_return_norm(n, xp), zeros, zeros)


def _after_step(spec: RolloutSpec, carry: EnvCarry, env_state, obs, reward, done, xp):
    """Bookkeeping shared by both rollouts: statistics, reward scaling, episode returns."""
    obs_stats = update_stats(carry.obs_stats, obs.astype(xp.float32)) if spec.normalize_obs else carry.obs_stats
    return_norm, stored_reward = carry.return_norm, reward
    if spec.normalize_reward:
        return_norm, stored_reward = scale_reward(carry.return_norm, reward, done, spec.gamma)
    ep_ret = carry.episode_return + reward
    ep_len = carry.episode_length + 1
    finished = EpisodeStats((ep_ret * done).sum(), (ep_len * done).sum(), done.sum())
    new = EnvCarry(env_state, obs, obs_stats, return_norm, ep_ret * (1 - done), ep_len * (1 - done))
    return new, stored_reward, finished


def policy_input(spec: RolloutSpec, stats: RunningStats, obs):
    return normalize(stats, obs) if spec.normalize_obs else obs


def jax_rollout(spec: RolloutSpec, env, env_params, sample_fn: Callable, params, carry: EnvCarry, key):
    """``spec.num_steps`` steps of ``vmap(env.step)`` in a ``lax.scan``.

    ``sample_fn(params, obs, key) -> actions`` sees normalised observations.
    Returns ``(carry, Batch, EpisodeStats summed over the rollout)``.
    """
    num_envs = carry.obs.shape[0]
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_step(carry: EnvCarry, key):
        k_act, k_env = jax.random.split(key)
        actions = sample_fn(params, policy_input(spec, carry.obs_stats, carry.obs), k_act)
        env_actions = actions if spec.action_low is None else jnp.clip(actions, spec.action_low, spec.action_high)
        obs, env_state, reward, done, info = step(jax.random.split(k_env, num_envs), carry.env_state, env_actions, env_params)
        done_f = done.astype(jnp.float32)
        new, stored_reward, finished = _after_step(spec, carry, env_state, obs, reward, done_f, jnp)
        out = Batch(carry.obs, actions, stored_reward, info["terminated"], done, info["final_observation"])
        return new, (out, finished)

    carry, (batch, finished) = jax.lax.scan(one_step, carry, jax.random.split(key, spec.num_steps))
    return carry, batch, jax.tree.map(lambda x: x.sum(), finished)


def host_rollout(spec: RolloutSpec, venv, sample_np: Callable, carry: EnvCarry):
    """The same rollout on a Gymnasium vector env, in Python.

    ``sample_np(obs) -> actions`` is a NumPy policy (a jitted call costs ~55 us of dispatch
    here, a third of a MuJoCo step). Returns NumPy ``(carry, Batch, EpisodeStats)``.
    """
    T, N = spec.num_steps, carry.obs.shape[0]
    obs_buf = np.empty((T, *carry.obs.shape), np.float32)
    next_buf = np.empty_like(obs_buf)
    rew_buf = np.empty((T, N), np.float32)
    term_buf = np.empty((T, N), bool)
    done_buf = np.empty((T, N), bool)
    act_buf = None
    totals = np.zeros(3)
    for t in range(T):
        actions = sample_np(policy_input(spec, carry.obs_stats, carry.obs))
        if act_buf is None:
            act_buf = np.empty((T, *actions.shape), actions.dtype)
        env_actions = actions if spec.action_low is None else np.clip(actions, spec.action_low, spec.action_high)
        obs, reward, term, trunc, info = venv.step(env_actions)
        done = term | trunc
        next_obs = obs
        if done.any():
            next_obs = obs.copy()
            for i in np.nonzero(info["_final_obs"])[0]:
                next_obs[i] = info["final_obs"][i]
        obs_buf[t], act_buf[t], term_buf[t], done_buf[t], next_buf[t] = carry.obs, actions, term, done, next_obs
        carry, rew_buf[t], finished = _after_step(
            spec, carry, None, obs.astype(np.float32), reward.astype(np.float32), done.astype(np.float32), np
        )
        totals += finished
    return carry, Batch(obs_buf, act_buf, rew_buf, term_buf, done_buf, next_buf), EpisodeStats(*totals)
