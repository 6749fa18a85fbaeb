"""CMA-ES over the parameters of a deterministic policy, in rllab's form.

rllab's ``algos/cma_es.py``, one of the methods Duan et al. 2016 benchmark ("Benchmarking Deep
Reinforcement Learning for Continuous Control"): the policy's parameters are one flat vector ``theta``
searched by the covariance matrix adaptation evolution strategy (Hansen & Ostermeier 2001; the
update equations of Hansen's tutorial, arXiv 1604.00772, eqs. 38-58). Each generation samples
``theta_i = m + sigma * N(0, C)``, plays one episode with each candidate (rllab: one rollout each),
ranks the candidates by their return (rllab: the discounted return from the first step), and moves
the mean, the step size ``sigma`` (cumulative step-size adaptation) and the covariance ``C`` (rank-one
and rank-mu updates). The search is evosax 0.3.2's ``CMA_ES`` (``Sep_CMA_ES``, Ros & Hansen 2008, for
``covariance="diagonal"``), whose ask and tell run inside the jitted training program; the policy is
CEM's (``surrogate.algos.cem``: the same flat-vector MLP, the same JAX and NumPy acting functions) and
the runtime plays the episodes (``collect="episodes"``: one vmapped rollout of the whole population
on JAX envs, a Python loop over the candidates on host envs). One change to evosax's CMA-ES: C is
eigendecomposed only every ~1 / (10 N (c_1 + c_mu)) generations, as in the ``cma`` package rllab used
(``LazyCMA_ES``); evosax decomposes it every generation, O(N^3), which is most of a generation's cost at
the 100-50-25 policy's N ~ 7k (``benchmarks/cmaes_check.py``).

Where this departs from rllab: rllab (batch mode) asks candidates until 50k steps are played and tells
them all at once, with the recombination weights of the default population (so ~100+ candidates per
tell, of which the best ``mu`` ~ 15 move the mean); here every generation plays and tells one population
(``population_size``; 0, as in the rllab preset: CMA's ``4 + floor(3 ln N)``). rllab starts the mean at the policy's
initial (Glorot) parameters; here at 0, as CEM does. rllab's final policy is the best candidate
played (``final="best"``); the default here is the mean.
"""
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import jax.custom_batching
from evosax.algorithms import CMA_ES, Sep_CMA_ES
from evosax.algorithms.distribution_based.cma_es import eigen_decomposition

from surrogate.algos import cem
from surrogate.algos.actor_critic import key_rng
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config:
    """CMA-ES hyperparameters. Defaults: a linear policy, 100 candidates per generation, sigma0 0.5,
    fitness the discounted return (gamma 0.99, as rllab), 10 generations: on CartPole-v1 the mean policy
    of each of 8 seeds first scored 500 (20 episodes) after 3-7 generations, and all 8 after 10. With
    CMA's default population (10 for CartPole's 10 parameters) 3 of 8 scored 500 after 10 generations.
    (For a linear policy over argmax actions, sigma0 does not matter: the mean starts at 0 and the
    policy is invariant to the parameters' scale.)"""

    env: str = "CartPole-v1"
    """environment id (`surrogate envs` lists them)"""
    iterations: int = 10
    """generations (one ask and one tell each); each plays population_size episodes"""
    population_size: int = 100
    """candidates per generation (lambda); 0: CMA's default 4 + floor(3 ln N), N the number of parameters"""
    sigma0: float = 0.5
    """initial step size (the mean starts at 0, the covariance at the identity); rllab's grid: {1000, 0.5}
    on the basic tasks, 0.1 on locomotion"""
    covariance: Literal["full", "diagonal"] = "full"
    """full: CMA-ES (O(N^2) memory and time per generation, plus an O(N^3) eigendecomposition every
    eigen_every generations); diagonal: Sep-CMA-ES (Ros & Hansen 2008, O(N))"""
    eigen_every: int = 0
    """generations between eigendecompositions of C (full covariance); 0: ceil(1 / (10 N (c_1 + c_mu))), the
    cma package's lazy update (every generation up to N ~ 40); 1: every generation, as evosax does"""
    fitness: Literal["discounted", "undiscounted"] = "discounted"
    """what candidates are ranked by: the discounted return sum_t gamma^t r_t (rllab) or the plain return"""
    gamma: float = 0.99
    """discount of the discounted fitness"""
    final: Literal["mean", "best"] = "mean"
    """the policy evaluated after training: the search mean, or the best candidate played so far by
    fitness (rllab's ``es.result()[0]``; one noisy episode per candidate makes it optimistic)"""
    hidden: tuple[int, ...] = ()
    """hidden layer widths of the deterministic MLP policy (default: none, a linear policy)"""
    activation: Literal["tanh", "relu"] = "tanh"
    """of the hidden layers"""

    def validate(self) -> "Config":
        if not (isinstance(self.iterations, int) and self.iterations >= 1):
            raise ConfigError(f"iterations must be an integer >= 1, got {self.iterations!r}. Pass --iterations N.")
        if not (isinstance(self.population_size, int) and (self.population_size == 0 or self.population_size >= 2)):
            raise ConfigError(f"population_size must be an integer >= 2 (or 0: CMA's default 4 + floor(3 ln N)), "
                              f"got {self.population_size!r}. Pass --population-size N.")
        if not (isinstance(self.eigen_every, int) and self.eigen_every >= 0):
            raise ConfigError(f"eigen_every must be an integer >= 0 (0: the cma package's interval), "
                              f"got {self.eigen_every!r}. Pass --eigen-every N.")
        if not (math.isfinite(self.sigma0) and self.sigma0 > 0):
            raise ConfigError(f"sigma0 must be a finite number > 0, got {self.sigma0!r}. Pass e.g. --sigma0 0.5.")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma!r}. Pass e.g. --gamma 0.99.")
        for name, allowed in (("covariance", ("full", "diagonal")), ("fitness", ("discounted", "undiscounted")),
                              ("final", ("mean", "best")), ("activation", tuple(cem.ACTIVATIONS))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}.")
        if any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden must list positive layer widths (or none: a linear policy), "
                              f"got {self.hidden!r}.")
        return self


PRESETS = {
    "cartpole": Config(),
    # The paper's settings (Duan et al. 2016; rllab's experiment scripts): a 100-50-25 tanh policy,
    # sigma0 0.5 (the basic tasks' grid is {1000, 0.5}: at 1000 every tanh unit saturates and the
    # policy is bang-bang from the first generation; pass --sigma0 0.1 for locomotion), CMA's default
    # population, discounted fitness with gamma 0.99, the best candidate as the final policy. 1700
    # generations of lambda = 30 (N ~ 6.9k: a 4-D observation, 1-D action) play about rllab's
    # 500 x 50k steps if every episode runs a 500-step horizon. Full covariance at this N keeps two
    # N x N float32 matrices (C, B: ~0.36 GB) per seed and eigendecomposes C every 45 generations;
    # --covariance diagonal (Sep-CMA-ES) is O(N) (benchmarks/cmaes_check.py measures both).
    "rllab": Config(iterations=1700, population_size=0, sigma0=0.5, hidden=(100, 50, 25), final="best"),
}
METRICS = ("mean_return", "max_return", "mean_fitness", "sigma")


def default_population_size(dim: int) -> int:
    """CMA's default ``lambda = 4 + floor(3 ln N)`` (Hansen's tutorial, Table 1)."""
    return 4 + int(math.floor(3 * math.log(dim)))


def population_size(config: Config, env) -> int:
    return config.population_size or default_population_size(cem.num_params(config, env))


def eigen_interval(dim: int, c_1: float, c_mu: float) -> int:
    """Generations between eigendecompositions of C: ``ceil(1 / (10 N (c_1 + c_mu)))``, at least 1 (Hansen's
    tutorial, B.2, and the ``cma`` package's ``lazy_update_gap``): 1 up to N = 80, 15 at N = 2000, 45 at 6851."""
    return max(1, math.ceil(1.0 / (10.0 * dim * (c_1 + c_mu)) - 1e-9))


def _decompose(C, B, D):
    return eigen_decomposition(C)[1:]  # evosax's: of C made symmetric, clipped and loaded with 1e-8 I


@jax.custom_batching.custom_vmap
def lazy_eigen(due, C, B, D):
    """``(B, D)`` of evosax's ``eigen_decomposition(C)`` if ``due``, else unchanged. C itself is returned by
    neither branch: passing the N x N matrix through the ``cond`` made XLA copy it (at N = 6851 that took
    0.5 s per generation against 0.11 s without); evosax also writes the regularised C back into its state."""
    return jax.lax.cond(due, _decompose, lambda C, B, D: (B, D), C, B, D)


@lazy_eigen.def_vmap
def _lazy_eigen_vmap(axis_size, in_batched, due, C, B, D):
    """Under the seeds' ``vmap`` a ``cond`` on a batched predicate would run both branches (the
    decomposition every generation); the seeds run in lockstep, so decompose all when any is due."""
    C, B, D = (x if b else jnp.broadcast_to(x, (axis_size, *x.shape)) for x, b in zip((C, B, D), in_batched[1:]))
    due = jnp.any(due) if in_batched[0] else due
    return jax.lax.cond(due, jax.vmap(_decompose), lambda C, B, D: (B, D), C, B, D), (True, True)


class LazyCMA_ES(CMA_ES):
    """evosax's ``CMA_ES`` with C eigendecomposed only every ``interval`` generations (``eigen_interval``),
    as the ``cma`` package rllab used does: evosax decomposes it in every ``ask``, O(N^3), which made its
    generation 5.5x slower than cma's at N = 2000 (``benchmarks/cmaes_check.py``; the gap grows ~N).
    Sampling and ``tell`` use the last decomposition's ``B``, ``D``; with ``interval`` 1 this is evosax's
    CMA_ES up to float rounding (tests/test_cmaes.py)."""

    def __init__(self, population_size: int, solution, interval: int):
        super().__init__(population_size, solution)
        self.interval = interval

    def _ask(self, key, state, params):
        B, D = lazy_eigen(state.generation_counter % self.interval == 0, state.C, state.B, state.D)
        z = jax.random.normal(key, (self.population_size, self.num_dims))  # Hansen's tutorial, eqs. 38-40
        return state.mean + state.std * ((z * D) @ B.T), state.replace(B=B, D=D)


@functools.lru_cache(maxsize=32)
def make_strategy(dim: int, population: int, sigma0: float, covariance: str = "full", eigen_every: int = 0):
    """evosax's CMA-ES (``LazyCMA_ES``; ``Sep_CMA_ES`` for ``covariance="diagonal"``) over ``dim`` parameters,
    and its parameters with the initial step size ``sigma0``; ``eigen_every`` 0: ``eigen_interval``. Cached,
    so that evosax's jitted ``init``, ``ask`` and ``tell`` (``self`` is a static argument) compile once per
    setting. The parameters are computed eagerly (NumPy), so that a first call inside a trace caches no
    tracer."""
    with jax.ensure_compile_time_eval():
        solution = jnp.zeros(dim, jnp.float32)
        if covariance == "full":
            params = CMA_ES(population, solution).default_params
            interval = eigen_every or eigen_interval(dim, float(params.c_1), float(params.c_mu))
            es = LazyCMA_ES(population, solution, interval)
        else:
            es = Sep_CMA_ES(population, solution)
        params = es.default_params.replace(std_init=jnp.float32(sigma0))
    return es, jax.device_get(params)


def strategy(config: Config, env):
    return make_strategy(cem.num_params(config, env), population_size(config, env), config.sigma0, config.covariance,
                         config.eigen_every)


def minimize(f, x0, sigma0: float, generations: int, key, population: int = 0, covariance: str = "full",
             eigen_every: int = 0):
    """Minimise ``f: [N] -> scalar`` from ``x0`` with the same evosax CMA-ES, ``generations`` ask/tell
    steps in one ``lax.scan`` (jittable; ``population`` 0: CMA's default). Returns the final state and the
    best ``f`` of each generation's population (``tests/test_cmaes.py``, ``benchmarks/cmaes_check.py``)."""
    x0 = jnp.asarray(x0, jnp.float32)
    es, params = make_strategy(x0.size, population or default_population_size(x0.size), sigma0, covariance,
                               eigen_every)

    def generation(state, key):
        k_ask, k_tell = jax.random.split(key)
        x, state = es.ask(k_ask, state, params)
        fx = jax.vmap(f)(x)
        state, _ = es.tell(k_tell, x, fx, state, params)
        return state, fx.min()

    k_init, key = jax.random.split(key)
    return jax.lax.scan(generation, es.init(k_init, x0, params), jax.random.split(key, generations))


# ----------------------------------------------------------------------------- the search


class State(NamedTuple):
    es: Any  # evosax's CMA_ES / Sep_CMA_ES state: mean, std (sigma), evolution paths, C (B, D), best so far
    population: jax.Array  # [population_size, num_params]: the candidates the next generation plays


def init(config: Config, env, key) -> State:
    """Mean 0, ``sigma = sigma0``, ``C = I``, and the first population drawn in NumPy from ``key``:
    ``sigma0 * z``, ``z ~ N(0, I)``, which is evosax's first ``ask`` (``B = I``, ``D = 1``) without its
    eigendecomposition of the identity."""
    es, params = strategy(config, env)
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(es.num_dims, jnp.float32), params)  # deterministic
    state = jax.tree.map(lambda x: np.asarray(x, np.int32 if jnp.issubdtype(x.dtype, jnp.integer) else np.float32),
                         state)
    z = key_rng(key, 0).standard_normal((es.population_size, es.num_dims))
    return State(state, (config.sigma0 * z).astype(np.float32))


def policy(config: Config, state: State):
    """The candidates to play, one episode each."""
    return state.population


def final_policy(config: Config, state: State):
    return state.es.mean if config.final == "mean" else state.es.best_solution


def learn(config: Config, env, state: State, experience, key):
    """Tell evosax the candidates' fitness (it minimises: the negated return), then ask for the next
    population. rllab's fitness is the discounted return of the episode from its first step
    (``discount_cumsum(rewards, discount)[0]``); the metrics' returns are undiscounted."""
    es, params = strategy(config, env)
    scores = experience.discounted_returns if config.fitness == "discounted" else experience.returns
    k_tell, k_ask = jax.random.split(key)
    es_state, _ = es.tell(k_tell, state.population, -scores, state.es, params)
    population, es_state = es.ask(k_ask, es_state, params)
    metrics = dict(mean_return=experience.returns.mean(), max_return=experience.returns.max(),
                   mean_fitness=scores.mean(), sigma=es_state.std)
    return State(es_state, population), metrics


ALGO = Algorithm(
    "cmaes", Config, PRESETS, METRICS, init, policy, cem.act, learn, host_act=cem.host_act, collect="episodes",
    final_policy=final_policy, num_iterations=lambda config: config.iterations,
    # the env steps an iteration may take: every episode to the horizon (what the JAX backend computes)
    steps_per_iteration=lambda config, env: population_size(config, env) * env.max_episode_steps)
