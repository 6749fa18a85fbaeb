"""Collecting experience with an algorithm's acting function: a jitted ``lax.scan`` for JAX envs and a
Python loop for host (Gymnasium) envs, and whole episodes for evaluation and population methods.

Both rollouts return the same time-major ``Batch`` of *raw* observations and both act with the
observation statistics frozen for the whole rollout; ``finish_rollout`` then folds the batch
into the statistics and scales the rewards, identically for both backends. A learner normalises
the batch with the updated statistics (PPO recomputes the old log-probabilities under them, so
the ratio in the surrogate starts at exactly 1).
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
    start_carry: Any = ()  # the policy's recurrent state at the rollout's first step, ``[N, ...]``
    episode_steps: Any = ()  # int32: the index of ``obs[t]`` within its episode (0 at a reset; both rollouts fill it)


class EpisodeStats(NamedTuple):
    """Undiscounted returns and lengths of the episodes that finished during one rollout."""

    return_sum: Any
    length_sum: Any
    count: Any


class Experience(NamedTuple):
    """What a ``collect="steps"`` iteration gives ``learn``: the rollout, and the observation statistics
    it was normalised with (already updated with the rollout's observations)."""

    batch: Batch
    obs_stats: RunningStats


class Episodes(NamedTuple):
    """What a ``collect="episodes"`` iteration gives ``learn``: one episode per candidate."""

    returns: Any  # [candidates]
    lengths: Any
    discounted_returns: Any = None  # sum_t gamma^t r_t with the rollout spec's gamma (rllab's CEM/CMA-ES fitness)


class EnvCarry(NamedTuple):
    env_state: Any  # None for host envs (their state lives in the vector env)
    obs: Any
    obs_stats: RunningStats
    return_norm: ReturnNormState
    episode_return: Any
    episode_length: Any
    policy_carry: Any = ()  # the acting function's recurrent state per env


class RolloutSpec(NamedTuple):
    """What a rollout does besides stepping: normalisation and action clipping."""

    num_steps: int
    normalize_obs: bool
    normalize_reward: bool
    gamma: float
    action_low: Any = None  # clip continuous actions to these bounds before stepping
    action_high: Any = None
    act_words: int = 0  # uint32 random words the acting function takes per env and step


def rollout_spec(config, env, act_words: int = 0, num_steps: int | None = None) -> RolloutSpec:
    """The rollout ``config`` asks for on ``env`` (normalisers off unless the config has them on)."""
    low, high = env.action_bounds or (None, None)
    return RolloutSpec(config.num_steps if num_steps is None else num_steps, getattr(config, "normalize_obs", False),
                       getattr(config, "normalize_reward", False), getattr(config, "gamma", 0.99), _hashable(low),
                       _hashable(high), act_words)


def _hashable(x):
    return x if x is None or np.isscalar(x) else tuple(np.asarray(x, np.float32).tolist())


def init_carry(env_state, obs, xp, policy_carry=()) -> EnvCarry:
    """``xp`` is ``numpy`` (host) or ``jax.numpy``. Statistics start at mean 0, variance 1."""
    n = obs.shape[0]
    zeros = xp.zeros((n,), xp.float32)
    return EnvCarry(env_state, obs, init_stats(obs.shape[1:], xp), init_return_norm(n, xp), zeros, zeros, policy_carry)


def policy_input(spec: RolloutSpec, stats: RunningStats, obs):
    return normalize(stats, obs) if spec.normalize_obs else obs


def clip_actions(spec: RolloutSpec, actions, xp):
    if spec.action_low is None:
        return actions
    return xp.clip(actions, xp.asarray(spec.action_low), xp.asarray(spec.action_high))


def reset_where(done, carry, xp):
    """The recurrent ``carry`` zeroed for the envs whose episode ended (``done [N]``)."""
    keep = lambda c: xp.where(done.reshape(-1, *([1] * (c.ndim - 1))), xp.zeros_like(c), c)
    return jax.tree.map(keep, carry)


def finish_rollout(spec: RolloutSpec, carry: EnvCarry, batch: Batch, xp):
    """Fold the batch's states into the observation statistics and scale its rewards."""
    if spec.normalize_obs:
        flat = batch.next_obs.reshape(-1, *batch.next_obs.shape[2:]).astype(xp.float32)
        carry = carry._replace(obs_stats=update_stats(carry.obs_stats, flat))
    if spec.normalize_reward:
        return_norm, rewards = scale_rewards(carry.return_norm, batch.rewards, batch.dones, spec.gamma, xp)
        carry, batch = carry._replace(return_norm=return_norm), batch._replace(rewards=rewards)
    return carry, batch


def jax_rollout(spec: RolloutSpec, env, act: Callable, params, carry: EnvCarry, key, start=None):
    """``spec.num_steps`` steps of ``vmap(env.step_to)`` in a ``lax.scan``, acting with
    ``act(params, obs, policy_carry, bits) -> (actions, policy_carry)`` (``Algorithm.act``).

    ``act`` sees normalised observations and its step's slice of random bits drawn for the whole
    rollout up front. ``start``: a boolean; where true the envs first start from fresh resets (a
    run's first rollout, whose ``carry`` holds placeholder env states: ``jax_driver.initial_state``).
    Returns ``(carry, Batch, EpisodeStats summed over the rollout)``.
    """
    num_envs = carry.obs.shape[0]
    step = jax.vmap(env.step_to, in_axes=(0, 0, 0, 0, None))
    env_params = env.default_params

    def one_step(carry: EnvCarry, inputs):
        act_bits, k_env, reset = inputs
        actions, policy_carry = act(params, policy_input(spec, carry.obs_stats, carry.obs), carry.policy_carry,
                                    act_bits)
        obs, env_state, reward, done, info = step(k_env, carry.env_state, clip_actions(spec, actions, jnp), reset,
                                                  env_params)
        done_f = done.astype(jnp.float32)
        ep_ret, ep_len = carry.episode_return + reward, carry.episode_length + 1
        finished = EpisodeStats((ep_ret * done_f).sum(), (ep_len * done_f).sum(), done_f.sum())
        new = carry._replace(env_state=env_state, obs=obs, episode_return=ep_ret * (1 - done_f),
                             episode_length=ep_len * (1 - done_f), policy_carry=reset_where(done, policy_carry, jnp))
        out = Batch(carry.obs, actions, reward, info["terminated"], done, info["final_observation"],
                    episode_steps=carry.episode_length.astype(jnp.int32))
        return new, (out, finished)

    # The rollout's randomness up front, from one draw of random bits (each jax.random call compiles
    # its own threefry loop): each step's env key, the state it would reset to if its episode ended
    # (plus one more row: the start states), and the acting function's bits.
    T = spec.num_steps
    words = key_words(key)
    bits = jax.random.bits(key, (T + 1, num_envs, 2 * words + spec.act_words))
    resets = jax.vmap(jax.vmap(env.reset, in_axes=(0, None)), in_axes=(0, None))(
        keys_like(key, bits[..., words:2 * words]), env_params)
    if start is not None:
        pick = lambda new, old: jnp.where(start, new[T], old)
        carry = carry._replace(obs=pick(resets[0], carry.obs), env_state=jax.tree.map(pick, resets[1], carry.env_state))
    start_carry = carry.policy_carry
    inputs = (bits[:T, :, 2 * words:], keys_like(key, bits[:T, :, :words]), jax.tree.map(lambda x: x[:T], resets))
    carry, (batch, finished) = jax.lax.scan(one_step, carry, inputs)
    carry, batch = finish_rollout(spec, carry, batch._replace(start_carry=start_carry), jnp)
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


def jax_episodes(spec: RolloutSpec, env, act: Callable, params, obs_stats, key, episodes: int, initial_carry=()):
    """``episodes`` episodes in parallel for ``max_episode_steps`` steps, acting with ``act``; returns
    ``Episodes`` (undiscounted and discounted returns, lengths). An episode stops counting when it ends
    (its env then stays where it was: ``step_to`` with no reset, keys and acting bits drawn up front from
    one draw of random bits, so the loop body holds no random-number code)."""
    words = key_words(key)
    bits = jax.random.bits(key, (env.max_episode_steps + 1, episodes, words + spec.act_words))
    obs, state = jax.vmap(env.reset)(keys_like(key, bits[-1, :, :words]))
    step = jax.vmap(env.step_to, in_axes=(0, 0, 0, 0, None))

    def body(carry, step_bits):
        obs, state, policy_carry, ret, disc, length, alive = carry
        actions, policy_carry = act(params, policy_input(spec, obs_stats, obs.astype(jnp.float32)), policy_carry,
                                    step_bits[:, words:])
        obs, state, reward, done, _ = step(keys_like(key, step_bits[:, :words]), state,
                                           clip_actions(spec, actions, jnp), (obs, state), env.default_params)
        ret, disc = ret + reward * alive, disc + reward * alive * spec.gamma ** length
        return (obs, state, policy_carry, ret, disc, length + alive, alive * (1.0 - done)), None

    zeros = jnp.zeros(episodes)
    init = (obs, state, initial_carry, zeros, zeros, zeros, jnp.ones(episodes))
    (*_, ret, disc, length, _), _ = jax.lax.scan(body, init, bits[:-1])
    return Episodes(ret, length, disc)


def host_episodes(spec: RolloutSpec, env, act_np: Callable, seed: int, episodes: int, initial_carry=()):
    """``jax_episodes`` on a host vector env: ``act_np(raw_obs, carry) -> (actions, carry)``. An env whose
    evaluation differs from training (Atari: the game's rewards and real game overs, not the clipped
    rewards and life-loss terminals it trains on) gives its evaluation envs by ``eval_vector``."""
    venv = getattr(env, "eval_vector", env.vector)(episodes, seed)
    obs, _ = venv.reset(seed=seed)
    ret, disc, length, alive = np.zeros(episodes), np.zeros(episodes), np.zeros(episodes), np.ones(episodes)
    carry = initial_carry
    try:
        while alive.any():
            actions, carry = act_np(obs, carry)
            obs, reward, term, trunc, _ = venv.step(clip_actions(spec, np.asarray(actions), np))
            ret += reward * alive
            disc += reward * alive * spec.gamma ** length
            length += alive
            alive *= 1.0 - (term | trunc)
    finally:
        venv.close()
    return Episodes(ret, length, disc)


def host_rollout(spec: RolloutSpec, venv, act_np: Callable, carry: EnvCarry):
    """The same rollout on a host vector env (``surrogate.envs.HostVectorEnv``), in Python.

    ``act_np(raw_obs, policy_carry) -> (actions, policy_carry)`` acts with the observation statistics
    frozen for the rollout (``host.host_acting``; a NumPy policy where the algorithm gives one).
    The loop does only what must happen per step (act, clip, step into preallocated rows); episode
    statistics are computed from the buffers afterwards, or, for a vector env that records its own
    (``venv.finished_episodes()``: Atari's game scores over all lives, where the rollout's rewards are
    clipped and its episodes end at each lost life), taken from it. Observations keep the carry's
    dtype (``uint8`` frames: a quarter of float32's memory and transfer).
    Returns NumPy ``(carry, Batch, EpisodeStats)``.
    """
    T, N = spec.num_steps, carry.obs.shape[0]
    obs_buf = np.empty((T + 1, *carry.obs.shape), carry.obs.dtype)  # row T: the observation to act on next
    obs_buf[0] = carry.obs
    next_buf = np.empty_like(obs_buf[:T])
    rew_buf = np.empty((T, N), np.float32)
    term_buf = np.empty((T, N), bool)
    trunc_buf = np.empty((T, N), bool)
    act_buf = None
    low = None if spec.action_low is None else np.asarray(spec.action_low, np.float32)
    high = None if spec.action_high is None else np.asarray(spec.action_high, np.float32)
    policy_carry = start_carry = carry.policy_carry
    recurrent = bool(jax.tree.leaves(policy_carry))
    for t in range(T):
        actions, policy_carry = act_np(obs_buf[t], policy_carry)
        if act_buf is None:
            act_buf = np.empty((T, *actions.shape), actions.dtype)
            clipped = np.empty_like(actions)
        act_buf[t] = actions
        if low is not None:  # (min/max ufuncs into a buffer: half the cost of np.clip's Python wrapper)
            actions = np.minimum(np.maximum(actions, low, out=clipped), high, out=clipped)
        venv.step_into(actions, obs_buf[t + 1], next_buf[t], rew_buf[t], term_buf[t], trunc_buf[t])
        if recurrent:
            policy_carry = reset_where(term_buf[t] | trunc_buf[t], policy_carry, np)
    done_buf = term_buf | trunc_buf
    finished, ep_ret, ep_len = episode_stats(rew_buf, done_buf, carry.episode_return, carry.episode_length)
    if hasattr(venv, "finished_episodes"):
        finished = EpisodeStats(*venv.finished_episodes())
    steps = episode_steps(done_buf, carry.episode_length)
    carry = carry._replace(obs=obs_buf[T], episode_return=ep_ret, episode_length=ep_len, policy_carry=policy_carry)
    batch = Batch(obs_buf[:T], act_buf, rew_buf, term_buf, done_buf, next_buf, start_carry, steps)
    carry, batch = finish_rollout(spec, carry, batch, np)
    return carry, batch, finished


def episode_steps(dones, ep_length):
    """``[T, N]`` int32 index of each step within its episode, given ``dones [T, N]`` and the length
    ``ep_length [N]`` each env's episode had at the rollout's start (``jax_rollout`` records
    ``EnvCarry.episode_length`` step by step instead)."""
    T = dones.shape[0]
    t = np.arange(T)[:, None]
    starts = np.concatenate([np.zeros_like(dones[:1]), dones[:-1]])  # a new episode starts at row t
    last_start = np.maximum.accumulate(np.where(starts, t, -1), axis=0)
    return np.where(last_start >= 0, t - last_start, t + np.asarray(ep_length)[None]).astype(np.int32)


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
