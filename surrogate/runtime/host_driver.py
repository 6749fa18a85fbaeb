"""The host-env driver: the env loop runs in Python (``host_rollout``) and ``Algorithm.learn`` is jitted.

The vector env is not saved in checkpoints: a resumed host run restarts its episodes (MuJoCo
simulator state is not checkpointable); the algorithm's state and the normalisers are kept.
"""
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from surrogate._jax_setup import FAST
from surrogate.runtime import parts
from surrogate.runtime.contract import EPISODE_KEYS, Algorithm, RunnerState
from surrogate.runtime.devices import cached
from surrogate.runtime.iteration import spec_of
from surrogate.runtime.rollout import (EpisodeStats, Episodes, Experience, host_episodes, host_rollout, init_carry,
                                       policy_input)


def host_acting(algo: Algorithm, config, env, params, obs_stats, rng: np.random.Generator, deterministic=False):
    """``act_np(raw_obs, carry) -> (actions, carry)`` for a host rollout, with ``obs_stats`` frozen:
    the algorithm's NumPy policy (``Algorithm.host_act``) where it gives one for stochastic acting,
    else its acting function jitted, with bits from ``rng``."""
    if algo.host_act is not None and not deterministic:
        return algo.host_act(config, env, params, obs_stats, rng)
    spec = spec_of(algo, config, env)
    words = 0 if deterministic else spec.act_words
    act = algo.act(config, env, deterministic)
    jitted = cached(("host_act", algo.name, config, env.id, deterministic), lambda: jax.jit(
        lambda p, s, o, c, b: act(p, policy_input(spec, s, o.astype(jnp.float32)), c, b), compiler_options=FAST))
    stats = jax.tree.map(jnp.asarray, obs_stats)

    def act_np(obs, carry):
        bits = rng.integers(0, 2**32, size=(obs.shape[0], words), dtype=np.uint32)
        actions, carry = jitted(params, stats, obs, carry, bits)
        return np.asarray(actions), jax.device_get(carry)

    return act_np


def learn_fn(algo: Algorithm, config, env) -> Callable:
    """``f(state, experience, key) -> (state, metrics, acting state)``; the critic's fit overlaps the next
    rollout for algorithms with ``parts``."""
    jit = lambda f: jax.jit(f, compiler_options=FAST)
    update = algo.host_update and cached(("host_update", algo.name, config, env.id),
                                         lambda: algo.host_update(config, env))
    if update:
        def update_and_act(state, experience, key):
            state, metrics = update(state, experience, key)
            return state, metrics, state

        return update_and_act
    split = parts.of(algo, config)
    if split is not None:
        return cached(("host_parts", algo.name, config, env.id), lambda: parts.host_learn(split, config, env, jit))
    # the state is donated: its buffers (a replay buffer, for one) are updated in place, not copied
    learn = cached(("host_learn", algo.name, config, env.id), lambda: jax.jit(
        lambda s, e, k: algo.learn(config, env, s, e, k), donate_argnums=(0,), compiler_options=FAST))

    def learn_and_act(state, experience, key):
        state, metrics = learn(state, experience, key)
        return state, metrics, state

    return learn_and_act


def init_runner(algo: Algorithm, config, env, key, venv) -> RunnerState:
    """A seed's state on a host env, its episodes started by resetting ``venv`` (``collect="steps"``; None:
    zero observations, the structure a checkpoint is restored into)."""
    k_init, k_run = jax.random.split(key)
    carry = ()
    if algo.collect == "steps":
        dtype = getattr(env, "obs_dtype", np.float32)  # Atari: uint8 frames
        if venv is None:
            obs = np.zeros((config.num_envs, *env.obs_shape), dtype)
        else:
            obs, _ = venv.reset(seed=int(jax.random.randint(k_run, (), 0, 2**31 - 1)))
        policy_carry = jax.device_get(algo.initial_carry(config, env, config.num_envs))
        carry = init_carry(None, obs.astype(dtype), np, policy_carry)
    return RunnerState(algo.init(config, env, k_init), carry, k_run, np.zeros((), np.int32))


def iteration(algo: Algorithm, config, env, learn: Callable, venv, runner: RunnerState, seed: int, acting):
    """Collect with the ``acting`` state's policy in Python, then the jitted ``learn``.

    Returns ``(runner, metrics, acting)``; the metrics stay on the device (fetching them at once
    would wait for work the algorithm left running in the background)."""
    key, k_learn = jax.random.split(runner.key)
    rng = np.random.default_rng([seed, int(runner.iteration)])
    spec = spec_of(algo, config, env)
    params = algo.policy(config, acting)
    if algo.collect == "steps":
        act_np = host_acting(algo, config, env, params, runner.env.obs_stats, rng)
        carry, batch, episodes = host_rollout(spec, venv, act_np, runner.env)
        experience = Experience(batch, jax.tree.map(jnp.asarray, carry.obs_stats))
    else:
        carry, experience = runner.env, host_population_episodes(algo, config, env, spec, params, rng)
        episodes = EpisodeStats(experience.returns.sum(), experience.lengths.sum(), float(len(experience.returns)))
    state, metrics, acting = learn(runner.algo, experience, k_learn)
    metrics = {**dict(zip(EPISODE_KEYS, (np.float32(x) for x in episodes))), **metrics}
    return RunnerState(state, carry, key, runner.iteration + 1), metrics, acting


def host_population_episodes(algo: Algorithm, config, env, spec, candidates, rng) -> Episodes:
    """One episode of each candidate, in a Python loop over candidates."""
    n = jax.tree.leaves(candidates)[0].shape[0]
    carry0 = jax.device_get(algo.initial_carry(config, env, 1))
    out = []
    for i in range(n):
        params = jax.tree.map(lambda x: x[i], candidates)
        act_np = host_acting(algo, config, env, params, None, rng)
        out.append(host_episodes(spec, env, act_np, int(rng.integers(2**31 - 1)), 1, carry0))
    return Episodes(*(np.concatenate([getattr(e, f) for e in out]) for f in Episodes._fields))
