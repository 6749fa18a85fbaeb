"""CMA-ES (evosax, over a policy's parameters) and CEM (``core.cem``) as optimisers and as RL methods."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import cli, envs, run
from surrogate.algos import cmaes
from surrogate.core.cem import cem_update, init_cem, sample_population
from surrogate.errors import ConfigError
from surrogate.runtime.iteration import population_episodes, spec_of
from surrogate.runtime.host_driver import host_population_episodes
from surrogate.runtime.rollout import Episodes


def sphere(x):
    """Shifted 10-D quadratic, minimum 0 at x = 1 (the searches start at 0, f = 10)."""
    return jnp.sum(jnp.square(x - 1.0))


def rosenbrock(x):
    """Rosenbrock's function, minimum 0 at x = 1 (f(0) = 9 in 10-D)."""
    return jnp.sum(100.0 * jnp.square(x[1:] - jnp.square(x[:-1])) + jnp.square(1.0 - x[:-1]))


def cma_best(f, generations: int, seeds: int = 4):
    """Best f so far after each generation, ``[seeds, generations]``: CMA-ES from 0, sigma0 0.5, lambda 10."""
    run_one = lambda k: cmaes.minimize(f, jnp.zeros(10), 0.5, generations, k)[1]
    fs = jax.jit(jax.vmap(run_one))(jax.random.split(jax.random.PRNGKey(0), seeds))
    return np.minimum.accumulate(np.asarray(fs), axis=1)


def cem_final(f, iterations: int, elite_frac: float, extra_std: float, extra_decay_time: float, seeds: int = 4):
    """f at the mean after ``iterations`` of (noisy) CEM with 100 samples, from mean 0 and std 1."""
    def run_one(key):
        def body(state, k):
            population = sample_population(state, k, 100, extra_std, extra_decay_time)
            return cem_update(state, population, -jax.vmap(f)(population), elite_frac), None
        state, _ = jax.lax.scan(body, init_cem(jnp.zeros(10), 1.0), jax.random.split(key, iterations))
        return f(state.mean)
    return np.asarray(jax.jit(jax.vmap(run_one))(jax.random.split(jax.random.PRNGKey(0), seeds)))


# ----------------------------------------------------------------------------- optimisers on test functions


def test_cmaes_solves_10d_quadratic_and_rosenbrock():
    """evosax CMA-ES (CMA's default lambda = 10 at N = 10): f < 1e-8 on the quadratic within 200
    generations (~140 seen) and on Rosenbrock within 800 (450-600 seen on 16 seeds), every seed."""
    quad, rosen = cma_best(sphere, 200), cma_best(rosenbrock, 800)
    assert (quad[:, -1] < 1e-8).all(), quad[:, -1]
    assert (rosen[:, -1] < 1e-8).all(), rosen[:, -1]
    assert (rosen[:, 100] > 1e-3).all()  # the valley takes a while: the run is not trivial


def test_cem_solves_10d_quadratic_and_approaches_rosenbrocks_minimum():
    """CEM (100 samples, diagonal Gaussian) reaches f < 1e-8 on the quadratic in 100 iterations (~35
    seen) with noisy CEM's extra std 0.1 decaying over 20 iterations. On Rosenbrock plain CEM collapses
    in the curved valley (f stays ~8-12 of the start's 9); the extra std 0.01 decaying over 2000 iterations
    keeps it moving, to f < 0.02 after 2000 iterations (200k evaluations; 10k iterations reach
    1e-5..4e-7), never 1e-8: CMA-ES needs ~5k evaluations for that."""
    assert (cem_final(sphere, 100, 0.2, 0.1, 20.0) < 1e-8).all()
    noisy = cem_final(rosenbrock, 2000, 0.1, 0.01, 2000.0)
    assert (noisy < 0.02).all(), noisy
    plain = cem_final(rosenbrock, 300, 0.1, 0.0, 1.0)
    assert (plain > 1.0).all(), plain


def test_lazy_eigendecomposition_is_evosax_cma_es_every_interval_and_vmaps_in_lockstep():
    """``LazyCMA_ES`` with interval 1 follows evosax's ``CMA_ES`` (to float rounding, before chaos sets in);
    with interval 4, ``B`` changes only every 4th generation, and seeds vmapped give each seed's own run
    (the batching rule decomposes all seeds together, which they need at the same generations)."""
    from evosax.algorithms import CMA_ES

    def trace(es, params, key, generations=12):
        def gen(state, k):
            k_ask, k_tell = jax.random.split(k)
            x, state = es.ask(k_ask, state, params)
            state, _ = es.tell(k_tell, x, jax.vmap(rosenbrock)(x), state, params)
            return state, (state.mean, state.B)
        return jax.lax.scan(gen, es.init(key, jnp.zeros(10), params), jax.random.split(key, generations))[1]

    ref = CMA_ES(10, jnp.zeros(10))
    ref_params = ref.default_params.replace(std_init=0.5)  # (made outside jit: evosax's weights then round the same)
    ref_mean, _ = jax.jit(lambda k: trace(ref, ref_params, k))(jax.random.PRNGKey(0))
    every, params = cmaes.make_strategy(10, 10, 0.5, "full", 1)
    mean, _ = jax.jit(lambda k: trace(every, params, k))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(mean, ref_mean, atol=1e-4)
    lazy, params = cmaes.make_strategy(10, 10, 0.5, "full", 4)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    means, bs = jax.jit(jax.vmap(lambda k: trace(lazy, params, k)))(keys)
    changed = [g for g in range(1, 12) if not np.allclose(bs[0, g], bs[0, g - 1])]
    assert changed == [4, 8], changed  # decomposed in the asks after 0, 4 and 8 tells (C = I at 0)
    for i in range(3):
        alone, _ = jax.jit(lambda k: trace(lazy, params, k))(keys[i])
        np.testing.assert_allclose(means[i], alone, atol=1e-4)
    assert [cmaes.make_strategy(n, cmaes.default_population_size(n), 0.5)[0].interval for n in (10, 2000, 6851)] \
        == [1, 15, 45]


# ----------------------------------------------------------------------------- the RL method


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@pytest.fixture(scope="module")
def four_seeds(cartpole):
    return cmaes.ALGO.train(cmaes.PRESETS["cartpole"], cartpole, jax.random.PRNGKey(0), seeds=4)


def test_cmaes_solves_cartpole_for_4_of_4_seeds(cartpole, four_seeds):
    cfg = cmaes.PRESETS["cartpole"]
    returns = [cmaes.ALGO.evaluate(cfg, cartpole, *cmaes.ALGO.seed_policy(cfg, four_seeds, i),
                                   jax.random.PRNGKey(7), 20).mean() for i in range(4)]
    assert min(returns) == 500, returns
    h = four_seeds.history
    assert h["mean_return"].shape == (4, cfg.iterations)
    assert (h["mean_return"][:, -1] > 5 * h["mean_return"][:, 0]).all(), h["mean_return"]
    np.testing.assert_allclose(h["episode_return_sum"], 100 * h["mean_return"], rtol=1e-5)
    # CartPole pays 1 per step, so the discounted fitness of an episode of length L is (1 - g^L) / (1 - g)
    assert (h["mean_fitness"] < h["mean_return"]).all() and (h["mean_fitness"] <= 1 / (1 - 0.99)).all()
    assert four_seeds.steps_per_update == 100 * 500


def test_seeds_differ_and_are_deterministic(cartpole, four_seeds):
    again = cmaes.ALGO.train(cmaes.PRESETS["cartpole"], cartpole, jax.random.PRNGKey(0), seeds=4)
    for a, b in zip(jax.tree.leaves(four_seeds.state.algo), jax.tree.leaves(again.state.algo)):
        np.testing.assert_array_equal(a, b)
    mean = four_seeds.state.algo.es.mean
    assert mean.shape == (4, 10) and not np.allclose(mean[0], mean[1])


def test_discounted_returns_of_episodes(cartpole, four_seeds):
    """The runtime's discounted return (rllab's fitness) on both backends: sum_t gamma^t r_t, which on
    CartPole (reward 1 per step) is (1 - gamma^L) / (1 - gamma)."""
    cfg = dataclasses.replace(cmaes.PRESETS["cartpole"], gamma=0.9)
    rng = np.random.default_rng(0)
    population = np.concatenate([np.asarray(four_seeds.state.algo.es.mean[:1]),
                                 rng.normal(size=(5, 10))]).astype(np.float32)
    spec = spec_of(cmaes.ALGO, cfg, cartpole)
    ep = jax.jit(lambda p: population_episodes(cmaes.ALGO, cfg, cartpole, spec, cmaes.ALGO.act(cfg, cartpole, False),
                                               p, jax.random.PRNGKey(1)))(population)
    host_env = envs.make("gym:CartPole-v1")
    host = host_population_episodes(cmaes.ALGO, cfg, host_env, spec_of(cmaes.ALGO, cfg, host_env), population, rng)
    for e in (ep, host):
        np.testing.assert_allclose(e.discounted_returns, (1 - 0.9 ** np.asarray(e.lengths)) / 0.1, rtol=1e-4)
        np.testing.assert_array_equal(e.returns, e.lengths)
    assert float(ep.returns[0]) == 500 and len(set(np.asarray(ep.lengths).tolist())) > 2


def test_learn_tells_the_chosen_fitness_and_asks_the_next_population(cartpole):
    cfg = cmaes.Config(population_size=8)
    state = cmaes.init(cfg, cartpole, jax.random.PRNGKey(0))
    returns = np.arange(8, dtype=np.float32)
    discounted = returns[::-1].copy()  # ranks the candidates the other way round
    experience = Episodes(returns, returns, discounted)
    learn = jax.jit(lambda c, s, e, k: cmaes.learn(c, cartpole, s, e, k), static_argnums=0)
    by_discounted, metrics = learn(cfg, state, experience, jax.random.PRNGKey(1))
    by_return, _ = learn(dataclasses.replace(cfg, fitness="undiscounted"), state, experience, jax.random.PRNGKey(1))
    pop = state.population
    # the mean moves towards the best-ranked candidates: the last ones by return, the first by discounted return
    assert np.dot(by_return.es.mean, pop[-1] - pop[0]) > 0 > np.dot(by_discounted.es.mean, pop[-1] - pop[0])
    np.testing.assert_allclose(by_discounted.es.best_solution, pop[0])
    np.testing.assert_allclose(by_return.es.best_solution, pop[-1])
    assert int(by_discounted.es.generation_counter) == 1 and by_discounted.population.shape == pop.shape
    np.testing.assert_allclose([metrics[k] for k in ("mean_return", "max_return", "mean_fitness")], [3.5, 7, 3.5])
    np.testing.assert_array_equal(cmaes.final_policy(dataclasses.replace(cfg, final="best"), by_return),
                                  by_return.es.best_solution)


def test_init_draws_the_first_population_with_sigma0(cartpole):
    cfg = cmaes.Config(population_size=4000, sigma0=0.3)
    state = cmaes.init(cfg, cartpole, jax.random.PRNGKey(0))
    assert state.population.shape == (4000, 10) and state.population.dtype == np.float32
    np.testing.assert_allclose(state.population.std(0), 0.3, rtol=0.05)
    np.testing.assert_allclose(state.es.mean, 0.0)
    assert float(state.es.std) == pytest.approx(0.3)
    assert not np.allclose(cmaes.init(cfg, cartpole, jax.random.PRNGKey(1)).population, state.population)


def test_population_size_default_and_rllab_preset():
    env = envs.make("Pendulum-v1")  # 3-D observation, 1-D action
    cfg = cmaes.PRESETS["rllab"]
    n = cmaes.cem.num_params(cfg, env)
    assert n == 4 * 100 + 101 * 50 + 51 * 25 + 26 * 1
    assert cmaes.population_size(cfg, env) == 4 + int(3 * np.log(n)) == 30
    assert cmaes.population_size(cmaes.Config(), env) == 100


def test_diagonal_covariance_and_host_backend():
    """Sep-CMA-ES on a continuous task (JAX backend), and the Python loop over candidates on a host env."""
    pendulum = envs.make("Pendulum-v1")
    cfg = cmaes.Config(env="Pendulum-v1", iterations=2, population_size=6, hidden=(8,), covariance="diagonal")
    result = cmaes.ALGO.train(cfg, pendulum, jax.random.PRNGKey(0), seeds=2)
    assert result.state.algo.es.C.shape == (2, cmaes.cem.num_params(cfg, pendulum))  # a vector: diagonal
    assert (result.history["mean_return"] < 0).all() and np.isfinite(result.history["sigma"]).all()
    host = envs.make("gym:CartPole-v1")
    cfg = cmaes.Config(env="gym:CartPole-v1", iterations=4, population_size=20)
    result = cmaes.ALGO.train(cfg, host, jax.random.PRNGKey(0), seeds=1)
    assert result.history["episode_count"][0, 0] == 20
    assert result.history["mean_return"][0, -1] > 2 * result.history["mean_return"][0, 0], result.history


def test_cli_run_checkpoint_and_resume_continue_the_same_trajectory(tmp_path, capsys):
    cfg = cmaes.Config(iterations=6, population_size=12)
    full = run.train_in_dir(tmp_path / "full", "cmaes", cfg, seeds=2, checkpoint_every=2)
    d = tmp_path / "resumed"
    run.train_in_dir(d, "cmaes", cfg, seeds=2, checkpoint_every=2, stop_after=2)  # "killed" after one chunk
    assert cli.main(["train", "cmaes", "--resume", str(d), "--no-progress"]) == 0
    assert "final return" in capsys.readouterr().out
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(run.load_result(d)[3].state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (d / "metrics.csv").read_text() == (tmp_path / "full" / "metrics.csv").read_text()
    assert json.loads((d / "config.json").read_text())["config"]["population_size"] == 12
    assert cli.main(["train", "cmaes", "--sigma0", "0", "--runs-dir", str(tmp_path)]) == 2
    assert "sigma0" in capsys.readouterr().err


@pytest.mark.parametrize("change, words", [
    (dict(iterations=0), "iterations"), (dict(population_size=1), "population_size"),
    (dict(population_size=-3), "population_size"), (dict(population_size=2.5), "population_size"),
    (dict(sigma0=0.0), "sigma0"), (dict(sigma0=-1.0), "sigma0"), (dict(sigma0=float("inf")), "sigma0"),
    (dict(gamma=0.0), "gamma"), (dict(gamma=1.5), "gamma"), (dict(covariance="low-rank"), "covariance"),
    (dict(fitness="median"), "fitness"), (dict(final="last"), "final"), (dict(hidden=(32, 0)), "hidden"),
    (dict(activation="sigmoid"), "activation"), (dict(eigen_every=-1), "eigen_every"),
])
def test_bad_configs_raise_config_error(change, words):
    with pytest.raises(ConfigError, match=words):
        dataclasses.replace(cmaes.Config(), **change).validate()
    assert cmaes.Config().validate() == cmaes.Config()
    assert all(p.validate() == p for p in cmaes.PRESETS.values())
