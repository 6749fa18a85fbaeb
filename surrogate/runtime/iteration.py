"""One training iteration on a JAX env: collect with the algorithm's acting function, then learn.

This is the function ``(config, state) -> (state, metrics)`` of the contract, made from an
``Algorithm``'s parts; ``jax_driver`` scans it, vmapped over seeds.
"""
from functools import partial

import jax
import jax.numpy as jnp

from surrogate.runtime import parts
from surrogate.runtime.contract import EPISODE_KEYS, Algorithm, RunnerState
from surrogate.runtime.rollout import EpisodeStats, Episodes, Experience, jax_episodes, jax_rollout, rollout_spec


def spec_of(algo: Algorithm, config, env):
    return rollout_spec(config, env, algo.act_words(config, env), num_steps=getattr(config, "num_steps", 1))


def jax_iteration(algo: Algorithm, config, env, runner: RunnerState, parts_in_parallel: bool = False):
    """Collect (``Algorithm.collect``), then ``Algorithm.learn``; one seed. ``parts_in_parallel``: the
    update's two parts on two devices at once (``parts.learn_parts_in_parallel``)."""
    key, k_collect, k_learn = jax.random.split(runner.key, 3)
    spec = spec_of(algo, config, env)
    act = algo.act(config, env, False)
    params = algo.policy(config, runner.algo)
    if algo.collect == "steps":
        carry, batch, episodes = jax_rollout(spec, env, act, params, runner.env, k_collect,
                                             start=runner.iteration == 0)
        experience = Experience(batch, carry.obs_stats)
    else:
        carry, experience = runner.env, population_episodes(algo, config, env, spec, act, params, k_collect)
        done = jnp.ones_like(experience.returns)
        episodes = EpisodeStats(experience.returns.sum(), experience.lengths.sum(), done.sum())
    learn = (partial(parts.learn_parts_in_parallel, parts.of(algo, config), algo.metrics) if parts_in_parallel
             else algo.learn)
    state, metrics = learn(config, env, runner.algo, experience, k_learn)
    return RunnerState(state, carry, key, runner.iteration + 1), {**dict(zip(EPISODE_KEYS, episodes)), **metrics}


def population_episodes(algo: Algorithm, config, env, spec, act, candidates, key) -> Episodes:
    """One episode of each candidate (a leading axis of ``candidates``), vmapped."""
    n = jax.tree.leaves(candidates)[0].shape[0]
    carry0 = algo.initial_carry(config, env, 1)
    one = lambda p, k: jax.tree.map(lambda x: x[0], jax_episodes(spec, env, act, p, None, k, 1, carry0))
    return jax.vmap(one)(candidates, jax.random.split(key, n))
