"""An optimisation for updates made of two independent parts: the actor's step, then the critic's fit.

PPO with separate updates and the TRPO family update the actor and the critic on the same prepared data
with no shared parameters or optimiser state. Acting needs only the actor, so:

* host envs (``host``): the critic's fit runs on the second core while the next rollout runs;
* JAX envs, one seed (``learn_parts_in_parallel``): the two parts run on two devices at once inside
  the training scan, each device then taking the other's half of the new state.

Both give the sequential update's numbers (tests). An algorithm opts in with ``register(name,
parts_of_config)``; nothing else in the runtime or the algorithm contract knows about it.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

AXIS = "parts"
_REGISTERED = {}


class ActorCriticParts(NamedTuple):
    """An update in two parts on the same prepared data; the parts share no state leaves."""

    prepare: Callable  # (config, env, state, experience, key) -> (data, drawn): what both parts take
    step_actor: Callable  # (config, env, state, data, drawn) -> (state, {metric: value})
    fit_critic: Callable  # (config, env, state, data, drawn) -> (state, {metric: value})
    owners: Callable  # state -> the same tree with 0 at the actor's leaves and 1 at the critic's
    critic_metrics: tuple = ("value_loss",)  # the names of fit_critic's metrics (float32 scalars, as the actor's)


def register(algo_name: str, parts_of_config: Callable) -> None:
    """``parts_of_config(config) -> ActorCriticParts | None`` for the algorithm named ``algo_name``."""
    _REGISTERED[algo_name] = parts_of_config


def of(algo, config) -> ActorCriticParts | None:
    fn = _REGISTERED.get(algo.name)
    return fn(config) if fn else None


def learn_in_parts(parts: ActorCriticParts, config, env, state, experience, key):
    """The whole update, sequentially: prepare, the actor's step, the critic's fit."""
    data, drawn = parts.prepare(config, env, state, experience, key)
    state, actor_metrics = parts.step_actor(config, env, state, data, drawn)
    state, critic_metrics = parts.fit_critic(config, env, state, data, drawn)
    return state, {**actor_metrics, **critic_metrics}


def on_two_devices(algo, config, seeds: int):
    """The mesh of two devices one seed's updates are split over, or None: one seed (more seeds fill
    the devices with seeds instead) of an algorithm with parts, on a host with two or more devices."""
    if seeds == 1 and len(jax.devices()) > 1 and of(algo, config) is not None:
        return jax.sharding.Mesh(np.array(jax.devices()[:2]), (AXIS,))
    return None


def learn_parts_in_parallel(parts: ActorCriticParts, metrics: tuple, config, env, state, experience, key):
    """``learn_in_parts`` with the parts on two devices at once, inside a ``shard_map`` over ``AXIS``
    (two devices, the run's state replicated on both). Both prepare the data; device 0 takes the
    actor's step and device 1 fits the critic. Then each device takes the other's half of the new
    state and metrics (``take_from_devices``), so both hold the whole of it: the sequential update,
    computed in about the time of its longer part. ``metrics``: the algorithm's metric names (the
    actor's are those that are not ``parts.critic_metrics``)."""
    data, drawn = parts.prepare(config, env, state, experience, key)  # on both devices
    critic_keys = parts.critic_metrics
    actor_keys = tuple(k for k in metrics if k not in critic_keys)
    zeros = lambda keys: {k: jnp.zeros((), jnp.float32) for k in keys}

    def actor_side(_):
        new, m = parts.step_actor(config, env, state, data, drawn)
        return new, {**m, **zeros(critic_keys)}

    def critic_side(_):
        new, m = parts.fit_critic(config, env, state, data, drawn)
        return new, {**zeros(actor_keys), **m}

    mine = jax.lax.cond(jax.lax.axis_index(AXIS) == 0, actor_side, critic_side, None)
    source = (parts.owners(state), {**{k: 0 for k in actor_keys}, **{k: 1 for k in critic_keys}})
    return take_from_devices(mine, source)


def take_from_devices(tree, source):
    """Every leaf of ``tree`` as the device numbered by the same leaf of ``source`` (0 or 1 on ``AXIS``)
    holds it, on both devices: one ``all_gather`` per dtype of the leaves concatenated, then each
    leaf sliced from its source's row (values arrive bit for bit)."""
    leaves, treedef = jax.tree.flatten(tree)
    src = jax.tree.leaves(source)
    out = list(leaves)
    for dtype in sorted({x.dtype for x in leaves}, key=str):
        idx = [i for i, x in enumerate(leaves) if x.dtype == dtype]
        both = jax.lax.all_gather(jnp.concatenate([leaves[i].reshape(-1) for i in idx]), AXIS)
        start = 0
        for i in idx:
            out[i] = both[src[i], start:start + leaves[i].size].reshape(leaves[i].shape)
            start += leaves[i].size
    return treedef.unflatten(out)


def host_learn(parts: ActorCriticParts, config, env, jit: Callable):
    """``f(state, experience, key) -> (state, metrics, acting state)`` for host runs: the critic's fit
    is dispatched asynchronously after the actor's step, and the state after the actor's step is
    returned at once for the next rollout, so the critic trains on the second core meanwhile."""
    def prepare_and_step(state, experience, key):
        data, drawn = parts.prepare(config, env, state, experience, key)
        return (*parts.step_actor(config, env, state, data, drawn), data, drawn)

    actor = jit(prepare_and_step)
    critic = jit(lambda s, d, r: parts.fit_critic(config, env, s, d, r))

    def learn(state, experience, key):
        state, actor_metrics, data, drawn = actor(state, experience, key)
        acting = state
        state, critic_metrics = critic(state, data, drawn)
        return state, {**actor_metrics, **critic_metrics}, acting

    return learn
