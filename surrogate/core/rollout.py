"""Rollouts: a jitted ``lax.scan`` for JAX envs and a Python loop for host (Gymnasium) envs.

Both return the same time-major ``Batch`` of *raw* observations and both act with the
observation statistics frozen for the whole rollout; ``finish_rollout`` then folds the batch
into the statistics and scales the rewards, identically for both backends. The learner
normalises the batch with the updated statistics and recomputes the old log-probabilities
under them, so the ratio in the surrogate starts at exactly 1.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogate.core.distributions import noise_from_bits
from surrogate.core.normalize import (
    RunningStats,
    ReturnNormState,
    init_return_norm,
    init_stats,
    normalize,
    scale_rewards,
    update_stats,
)


class Batch(NamedTuple):
    """``[T, N, ...]`` arrays. ``next_obs[t]`` is the state step t reached (final obs at episode ends)."""

    obs: Any
    actions: Any
    rewards: Any  # scaled by `finish_rollout` when reward normalisation is on
    terminations: Any
    dones: Any  # terminated or truncated
    next_obs: Any


class EpisodeStats(NamedTuple):
    """Undiscounted returns and lengths of the episodes that finished during one rollout."""

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
    """``xp`` is ``numpy`` (host) or ``jax.numpy``. Statistics start at mean 0, variance 1."""
    n = obs.shape[0]
    zeros = xp.zeros((n,), xp.float32)
    return EnvCarry(env_state, obs, init_stats(obs.shape[1:], xp), init_return_norm(n, xp), zeros, zeros)


def policy_input(spec: RolloutSpec, stats: RunningStats, obs):
    return normalize(stats, obs) if spec.normalize_obs else obs


def clip_actions(spec: RolloutSpec, actions, xp):
    if spec.action_low is None:
        return actions
    return xp.clip(actions, xp.asarray(spec.action_low), xp.asarray(spec.action_high))


def finish_rollout(spec: RolloutSpec, carry: EnvCarry, batch: Batch, xp):
    """Fold the batch's states into the observation statistics and scale its rewards."""
    if spec.normalize_obs:
        flat = batch.next_obs.reshape(-1, *batch.next_obs.shape[2:]).astype(xp.float32)
        carry = carry._replace(obs_stats=update_stats(carry.obs_stats, flat))
    if spec.normalize_reward:
        return_norm, rewards = scale_rewards(carry.return_norm, batch.rewards, batch.dones, spec.gamma, xp)
        carry, batch = carry._replace(return_norm=return_norm), batch._replace(rewards=rewards)
    return carry, batch


def jax_rollout(spec: RolloutSpec, env, env_params, sample_fn: Callable, params, carry: EnvCarry, key, discrete: bool,
                start=None):
    """``spec.num_steps`` steps of ``vmap(env.step_to)`` in a ``lax.scan``.

    ``sample_fn(params, obs, noise) -> actions`` sees normalised observations and the step's slice of
    noise drawn for the whole rollout up front (Gumbel if ``discrete``, else normal). ``start``: a
    boolean; where true the envs first start from fresh resets (a run's first rollout, whose ``carry``
    holds placeholder env states: ``onpolicy.jax_init``).
    Returns ``(carry, Batch, EpisodeStats summed over the rollout)``.
    """
    num_envs = carry.obs.shape[0]
    step = jax.vmap(env.step_to, in_axes=(0, 0, 0, 0, None))

    def one_step(carry: EnvCarry, inputs):
        noise, k_env, reset = inputs
        actions = sample_fn(params, policy_input(spec, carry.obs_stats, carry.obs), noise)
        obs, env_state, reward, done, info = step(k_env, carry.env_state, clip_actions(spec, actions, jnp), reset,
                                                  env_params)
        done_f = done.astype(jnp.float32)
        ep_ret, ep_len = carry.episode_return + reward, carry.episode_length + 1
        finished = EpisodeStats((ep_ret * done_f).sum(), (ep_len * done_f).sum(), done_f.sum())
        new = carry._replace(env_state=env_state, obs=obs, episode_return=ep_ret * (1 - done_f),
                             episode_length=ep_len * (1 - done_f))
        out = Batch(carry.obs, actions, reward, info["terminated"], done, info["final_observation"])
        return new, (out, finished)

    # The rollout's randomness up front, from one draw of random bits (each jax.random call compiles
    # its own threefry loop): each step's env key, the state it would reset to if its episode ended
    # (plus one more row: the start states), and the action noise.
    T = spec.num_steps
    words = key_words(key)
    bits = jax.random.bits(key, (T + 1, num_envs, 2 * words + env.action_dim))
    resets = jax.vmap(jax.vmap(env.reset, in_axes=(0, None)), in_axes=(0, None))(
        keys_like(key, bits[..., words:2 * words]), env_params)
    noise = noise_from_bits(bits[:T, :, 2 * words:], discrete)
    if start is not None:
        pick = lambda new, old: jnp.where(start, new[T], old)
        carry = carry._replace(obs=pick(resets[0], carry.obs), env_state=jax.tree.map(pick, resets[1], carry.env_state))
    inputs = (noise, keys_like(key, bits[:T, :, :words]), jax.tree.map(lambda x: x[:T], resets))
    carry, (batch, finished) = jax.lax.scan(one_step, carry, inputs)
    carry, batch = finish_rollout(spec, carry, batch, jnp)
    return carry, batch, jax.tree.map(lambda x: x.sum(), finished)


def key_words(key) -> int:
    """The number of uint32 words in ``key``'s data (2 for threefry keys)."""
    return jax.random.key_data(key).shape[-1] if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key.shape[-1]


def keys_like(key, words):
    """Keys of ``key``'s kind (a typed key or a raw uint32 key) with ``words`` (random bits, last axis
    the key data) as their data: a batch of independent keys with no threefry call of its own."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(words, impl=jax.random.key_impl(key))
    return words


def host_rollout(spec: RolloutSpec, venv, sample_np: Callable, carry: EnvCarry):
    """The same rollout on a host vector env (``surrogate.envs.HostVectorEnv``), in Python.

    ``sample_np(raw_obs) -> actions`` acts with the observation statistics frozen for the rollout
    (``onpolicy.host_sampler``: a NumPy policy, since a jitted call costs ~55 us of dispatch here,
    half a MuJoCo step). The loop does only what must happen per step (act, clip, step into
    preallocated rows); episode statistics are computed from the buffers afterwards.
    Returns NumPy ``(carry, Batch, EpisodeStats)``.
    """
    T, N = spec.num_steps, carry.obs.shape[0]
    obs_buf = np.empty((T + 1, *carry.obs.shape), np.float32)  # row T: the observation to act on next
    obs_buf[0] = carry.obs
    next_buf = np.empty_like(obs_buf[:T])
    rew_buf = np.empty((T, N), np.float32)
    term_buf = np.empty((T, N), bool)
    trunc_buf = np.empty((T, N), bool)
    act_buf = None
    low = None if spec.action_low is None else np.asarray(spec.action_low, np.float32)
    high = None if spec.action_high is None else np.asarray(spec.action_high, np.float32)
    for t in range(T):
        actions = sample_np(obs_buf[t])
        if act_buf is None:
            act_buf = np.empty((T, *actions.shape), actions.dtype)
            clipped = np.empty_like(actions)
        act_buf[t] = actions
        if low is not None:  # (min/max ufuncs into a buffer: half the cost of np.clip's Python wrapper)
            actions = np.minimum(np.maximum(actions, low, out=clipped), high, out=clipped)
        venv.step_into(actions, obs_buf[t + 1], next_buf[t], rew_buf[t], term_buf[t], trunc_buf[t])
    done_buf = term_buf | trunc_buf
    finished, ep_ret, ep_len = episode_stats(rew_buf, done_buf, carry.episode_return, carry.episode_length)
    carry = carry._replace(obs=obs_buf[T], episode_return=ep_ret, episode_length=ep_len)
    batch = Batch(obs_buf[:T], act_buf, rew_buf, term_buf, done_buf, next_buf)
    carry, batch = finish_rollout(spec, carry, batch, np)
    return carry, batch, finished


def episode_stats(rewards, dones, ep_return, ep_length):
    """Returns and lengths of the episodes that ended in a ``[T, N]`` rollout, given the running
    return and length of each env's episode at its start; also the running values at its end."""
    T, N = rewards.shape
    ret_sum = len_sum = count = 0.0
    new_ret, new_len = np.empty(N, np.float32), np.empty(N, np.float32)
    cum = np.concatenate([np.zeros((1, N)), np.cumsum(rewards, axis=0, dtype=np.float64)])  # cum[t] = sum r[:t]
    for i in range(N):
        ends = np.flatnonzero(dones[:, i]) + 1  # episode boundaries, as prefix lengths
        starts = np.concatenate([[0], ends])
        if len(ends):
            rets = cum[ends, i] - cum[starts[:-1], i]
            ret_sum += rets.sum() + ep_return[i]
            len_sum += (ends - starts[:-1]).sum() + ep_length[i]
            count += len(ends)
            new_ret[i], new_len[i] = cum[T, i] - cum[ends[-1], i], T - ends[-1]
        else:
            new_ret[i], new_len[i] = ep_return[i] + cum[T, i], ep_length[i] + T
    return EpisodeStats(ret_sum, len_sum, count), new_ret, new_len
