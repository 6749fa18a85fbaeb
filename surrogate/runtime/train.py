"""``train``, ``evaluate`` and checkpoint templates for any ``Algorithm``, on either backend."""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogate._jax_setup import RUN_ONCE
from surrogate.runtime import host_driver, jax_driver
from surrogate.runtime.contract import EPISODE_KEYS, Algorithm, RunnerState
from surrogate.runtime.devices import cached
from surrogate.runtime.iteration import spec_of
from surrogate.runtime.rollout import EnvCarry, host_episodes, jax_episodes
from surrogate.errors import ConfigError


class TrainResult(NamedTuple):
    state: Any  # RunnerState, seed-stacked (JAX env), or a list of RunnerState (host env)
    history: dict  # metric name -> float array [seeds, iterations]
    steps_per_update: int


def _stack_history(algo: Algorithm, history: dict, metrics: dict) -> dict:
    """Append ``metrics`` (``[seeds, iterations]`` arrays) to ``history``, keys in the algorithm's order; a
    metric the history lacks (a run saved by a version without it) is NaN for the earlier iterations."""
    new = {k: np.asarray(metrics[k], np.float64) for k in (*EPISODE_KEYS, *algo.metrics)}
    done = next(iter(history.values())).shape[1] if history else 0
    before = {k: history.get(k, np.full((v.shape[0], done), np.nan)) for k, v in new.items()}
    return {k: np.concatenate([before[k], v], axis=1) for k, v in new.items()}


def train(algo: Algorithm, config, env, key, *, seeds: int = 1, logger: Callable | None = None,
          resume: TrainResult | None = None, chunk_updates: int | None = None, until: int | None = None) -> TrainResult:
    """Train ``seeds`` independent agents of ``algo`` on ``env``.

    ``logger(result_so_far, iterations_done)`` is called after every chunk of ``chunk_updates``
    iterations (default: all of them); the run directory uses it to checkpoint. ``resume``
    continues a previous result (from ``checkpoint.load``) to ``algo.num_iterations(config)``;
    ``until`` stops after that many iterations in all (as an interruption would; schedules unchanged).
    """
    config.validate()
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}.")
    total = algo.num_iterations(config)
    chunk = max(1, min(chunk_updates or total, total))
    until = total if until is None else min(until, total)
    run = _train_jax if env.backend == "jax" else _train_host
    return run(algo, config, env, key, seeds, logger, resume, chunk, until)


def _train_jax(algo, config, env, key, seeds, logger, resume, chunk, until):
    if resume is None:
        runner, history = jax_driver.initial_state(algo, config, env, jax.random.split(key, seeds)), {}
    else:
        runner, history = resume.state, resume.history
    steps = algo.steps_per_iteration(config, env)
    done = int(np.asarray(runner.iteration).reshape(-1)[0])
    while done < until:
        n = min(chunk, until - done)
        program = cached(("chunk", algo.name, config, env.id, seeds, n),
                         lambda: jax_driver.train_program(algo, config, env, seeds, n, donate=True))
        runner, metrics = program(runner)
        history = _stack_history(algo, history, jax.device_get(metrics))
        done += n
        if logger:
            logger(TrainResult(runner, history, steps), done)
    return TrainResult(runner, history, steps)


def _train_host(algo, config, env, key, seeds, logger, resume, chunk, until):
    learn = host_driver.learn_fn(algo, config, env)
    steps = algo.steps_per_iteration(config, env)
    venvs = [env.vector(config.num_envs, seed=i) if algo.collect == "steps" else None for i in range(seeds)]
    runners = [host_driver.init_runner(algo, config, env, k, v) for k, v in zip(jax.random.split(key, seeds), venvs)]
    history = {}
    if resume is not None:  # the algorithm's state and the normalisers continue; episodes restart
        keep = lambda r, old: old.env if not isinstance(r.env, EnvCarry) else r.env._replace(obs_stats=old.env.obs_stats,
                                                                          return_norm=old.env.return_norm)
        runners = [r._replace(algo=old.algo, key=old.key, iteration=old.iteration, env=keep(r, old))
                   for r, old in zip(runners, resume.state)]
        history = resume.history
    done = int(runners[0].iteration)
    acting = [r.algo for r in runners]
    try:
        while done < until:
            n = min(chunk, until - done)
            per_seed = []
            for i in range(seeds):
                ms = []
                for _ in range(n):
                    runners[i], m, acting[i] = host_driver.iteration(algo, config, env, learn, venvs[i], runners[i], i,
                                                                     acting[i])
                    ms.append(m)
                per_seed.append(jax.tree.map(lambda *x: np.stack(x), *jax.device_get(ms)))
            history = _stack_history(algo, history, jax.tree.map(lambda *x: np.stack(x), *per_seed))
            done += n
            if logger:
                logger(TrainResult(runners, history, steps), done)
    finally:
        for v in venvs:
            if v is not None:
                v.close()
    return TrainResult(runners, history, steps)


def state_template(algo: Algorithm, config, env, key, seeds: int):
    """A run's initial state (its structure, shapes and dtypes), for restoring a checkpoint."""
    keys = jax.random.split(key, seeds)
    if env.backend == "jax":
        return jax_driver.initial_state(algo, config, env, keys)
    return [host_driver.init_runner(algo, config, env, k, None) for k in keys]


def seed_policy(algo: Algorithm, config, result: TrainResult, i: int):
    """``(params, obs_stats)`` that seed ``i``'s evaluation acts with (``Algorithm.final_policy``)."""
    if isinstance(result.state, RunnerState):
        runner = jax.tree.map(lambda x: x[i], result.state)
    else:
        runner = result.state[i]
    stats = runner.env.obs_stats if isinstance(runner.env, EnvCarry) else None
    return algo.evaluated_policy(config, runner.algo), jax.tree.map(jnp.asarray, stats)


def eval_program(algo: Algorithm, config, env, episodes: int):
    """``(params, obs_stats, key) -> returns`` of ``episodes`` deterministic episodes on a JAX env, jitted.
    An evaluation runs once or a few times per run, so it is compiled for compile time (``RUN_ONCE``:
    LLVM -O0, no fusion emitters)."""
    spec = spec_of(algo, config, env)._replace(act_words=0)
    return cached(("eval", algo.name, config, env.id, episodes), lambda: jax.jit(
        lambda p, s, k: jax_episodes(spec, env, algo.act(config, env, True), p, s, k, episodes,
                                     algo.initial_carry(config, env, episodes)).returns, compiler_options=RUN_ONCE))


def evaluate(algo: Algorithm, config, env, params, obs_stats, key, episodes: int = 20) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes with the deterministic policy (``act(..., True)``)."""
    if env.backend == "jax":
        return np.asarray(eval_program(algo, config, env, episodes)(params, obs_stats, key))
    spec = spec_of(algo, config, env)._replace(act_words=0)
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    act_np = host_driver.host_acting(algo, config, env, params, obs_stats, np.random.default_rng(seed), True)
    carry0 = jax.device_get(algo.initial_carry(config, env, episodes))
    return host_episodes(spec, env, act_np, seed, episodes, carry0).returns
