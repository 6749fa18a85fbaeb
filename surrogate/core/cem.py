"""The cross-entropy method over a parameter vector, in rllab's form.

CEM for optimisation, Rubinstein & Kroese 2004 (ch. 4): sample a population from a
diagonal Gaussian, keep the elite fraction with the highest scores, refit the mean and
standard deviation to the elites. Noisy CEM, Szita & Lőrincz 2006 ("Learning Tetris
using the noisy cross-entropy method"): add extra variance ``Z_t`` to the refitted
variance, decaying over iterations (their ``Z_t = max(5 - t/10, 0)``), so the
distribution does not collapse too early. rllab (``rllab/algos/cem.py``) samples with
``extra variance = max(1 - itr / extra_decay_time, 0) * extra_std**2``.
"""
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp


class CEMState(NamedTuple):
    mean: jax.Array  # [dim]
    std: jax.Array  # [dim]
    iteration: jax.Array  # int32 scalar: number of updates done


def init_cem(mean, std) -> CEMState:
    """Initial search distribution; ``std`` may be a scalar (broadcast to ``mean``'s shape)."""
    mean = jnp.asarray(mean, jnp.float32)
    return CEMState(mean, jnp.broadcast_to(jnp.asarray(std, mean.dtype), mean.shape), jnp.zeros((), jnp.int32))


def sample_std(state: CEMState, extra_std: float, extra_decay_time: float):
    """``sqrt(std^2 + max(1 - itr / extra_decay_time, 0) * extra_std^2)`` (rllab; Szita &
    Lőrincz 2006 use a decaying additive noise term on the variance the same way).
    ``extra_std = 0`` is plain CEM; rllab's defaults are ``extra_std=1, extra_decay_time=100``."""
    extra_var_mult = jnp.maximum(1.0 - state.iteration / extra_decay_time, 0.0)
    return jnp.sqrt(jnp.square(state.std) + extra_var_mult * extra_std**2)


def sample_population(state: CEMState, key, n: int, extra_std: float, extra_decay_time: float):
    """``n`` parameter vectors ``mean + sample_std * eps``, ``eps ~ N(0, I)``: ``[n, dim]``."""
    eps = jax.random.normal(key, (n, *state.mean.shape), state.mean.dtype)
    return state.mean + sample_std(state, extra_std, extra_decay_time) * eps


def num_elites(n: int, elite_frac: float) -> int:
    """``ceil(elite_frac * n)``, at least 1 (rllab truncates with ``int``; we round up)."""
    return max(1, math.ceil(elite_frac * n - 1e-9))


def cem_update(state: CEMState, population, scores, elite_frac: float) -> CEMState:
    """Refit mean and std (per coordinate, population std) to the ``ceil(elite_frac * n)``
    members with the highest ``scores``; the iteration counter advances by one."""
    chex.assert_rank(population, 2)
    chex.assert_shape(scores, (population.shape[0],))
    _, idx = jax.lax.top_k(scores, num_elites(population.shape[0], elite_frac))
    elites = population[idx]
    return CEMState(elites.mean(axis=0), elites.std(axis=0), state.iteration + 1)
