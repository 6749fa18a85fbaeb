"""The JAX-env driver: a whole run (or a chunk of it) is one jitted ``lax.scan`` of iterations,
vmapped over seeds and sharded across CPU devices."""
from functools import partial

import jax
import numpy as np

from surrogate.runtime import parts
from surrogate.runtime.contract import Algorithm, RunnerState
from surrogate.runtime.devices import over_seeds
from surrogate.runtime.iteration import jax_iteration
from surrogate.runtime.rollout import init_carry


def stack(trees):
    return jax.tree.map(lambda *x: np.stack([np.asarray(y) for y in x]), *trees)


def initial_state(algo: Algorithm, config, env, keys) -> RunnerState:
    """The run's state for a leading axis of seed ``keys``, made on the host with nothing to compile:
    each seed's ``Algorithm.init`` (the key seeds it and is the run's JAX key), and, for ``collect=
    "steps"``, zero placeholders for the envs' states, replaced in the training program by the first
    rollout's own resets (``jax_rollout(start=...)``)."""
    keys = np.asarray(keys)
    seeds = keys.shape[0]
    state = stack([algo.init(config, env, k) for k in keys])
    carry = ()
    if algo.collect == "steps":
        obs, env_state = jax.eval_shape(lambda k: jax.vmap(env.reset)(jax.random.split(k, config.num_envs)), keys[0])
        zeros = lambda tree: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), tree)
        one = init_carry(zeros(env_state), zeros(obs), np, algo.initial_carry(config, env, config.num_envs))
        carry = jax.tree.map(lambda x: np.broadcast_to(x, (seeds, *np.shape(x))).copy(), one)
    return RunnerState(state, carry, keys, np.zeros((seeds,), np.int32))


def train_chunk(algo: Algorithm, config, env, runner: RunnerState, num_iterations: int, parts_in_parallel: bool = False):
    iteration = lambda r, _: jax_iteration(algo, config, env, r, parts_in_parallel)
    return jax.lax.scan(iteration, runner, None, length=num_iterations)


def train_program(algo: Algorithm, config, env, seeds: int, num_iterations: int, donate: bool = False):
    """The jitted program that runs ``num_iterations`` iterations of ``seeds`` seeds (a chunk of a run)."""
    mesh = parts.on_two_devices(algo, config, seeds)
    return over_seeds(partial(train_chunk, algo, config, env, num_iterations=num_iterations,
                              parts_in_parallel=mesh is not None), seeds, donate, mesh=mesh)
