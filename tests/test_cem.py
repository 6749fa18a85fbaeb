import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import cem
from surrogate.core.cem import num_elites
from surrogate.errors import ConfigError
from surrogate.runtime.iteration import population_episodes, spec_of
from surrogate.runtime.rollout import Episodes, jax_episodes


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@pytest.fixture(scope="module")
def four_seeds(cartpole):
    """The default config (20 iterations of 100 candidates), 4 seeds in one jitted, sharded run."""
    return cem.ALGO.train(cem.Config(), cartpole, jax.random.PRNGKey(0), seeds=4)


def test_cem_solves_cartpole_for_4_of_4_seeds(cartpole, four_seeds):
    cfg = cem.Config()
    returns = [cem.ALGO.evaluate(cfg, cartpole, *cem.ALGO.seed_policy(cfg, four_seeds, i), jax.random.PRNGKey(7),
                                 20).mean() for i in range(4)]
    assert min(returns) >= 475, returns
    h = four_seeds.history
    assert h["mean_return"].shape == (4, cfg.iterations)
    # the population improves too, not just its mean; and the extra noise shrinks the refitted std
    assert (h["mean_return"][:, -5:].mean(1) > 5 * h["mean_return"][:, 0]).all(), h["mean_return"]
    assert (h["elite_return"] >= h["mean_return"]).all() and (h["max_return"] >= h["elite_return"]).all()
    np.testing.assert_allclose(h["episode_return_sum"], 100 * h["mean_return"], rtol=1e-5)
    assert four_seeds.steps_per_update == 100 * 500


def test_seeds_differ_and_are_deterministic(cartpole, four_seeds):
    again = cem.ALGO.train(cem.Config(), cartpole, jax.random.PRNGKey(0), seeds=4)
    for a, b in zip(jax.tree.leaves(four_seeds.state.algo), jax.tree.leaves(again.state.algo)):
        np.testing.assert_array_equal(a, b)
    mean = four_seeds.state.algo.cem.mean
    assert mean.shape == (4, 4 * 2 + 2) and not np.allclose(mean[0], mean[1])


def test_candidates_are_evaluated_independently(cartpole, four_seeds):
    """A candidate's return in the vmapped population equals its return played alone with the same key,
    and does not change when the other candidates do."""
    cfg = dataclasses.replace(cem.Config(), population_size=8)
    spec, act = spec_of(cem.ALGO, cfg, cartpole), cem.act(cfg, cartpole, False)
    solved = np.asarray(four_seeds.state.algo.cem.mean[0])
    rng = np.random.default_rng(0)
    population = np.concatenate([solved[None], rng.normal(size=(7, solved.size)) * 2]).astype(np.float32)
    population[1] = solved + 0.3 * rng.normal(size=solved.size)  # a mixture of good and bad candidates
    key = jax.random.PRNGKey(3)
    batch = jax.jit(lambda p: population_episodes(cem.ALGO, cfg, cartpole, spec, act, p, key))
    together = batch(population)
    alone = jax.jit(lambda p, k: jax_episodes(spec, cartpole, act, p, None, k, 1))
    keys = jax.random.split(key, 8)
    for i in range(8):
        e = alone(population[i], keys[i])
        assert float(e.returns[0]) == float(together.returns[i]) and float(e.lengths[0]) == float(together.lengths[i])
    assert float(together.returns[0]) == 500 and len(set(np.asarray(together.returns).tolist())) > 3
    shuffled = population.copy()
    shuffled[1:] = shuffled[1:][::-1]  # everything but candidate 0 changes
    shuffled[2:] *= -1
    assert float(batch(shuffled).returns[0]) == float(together.returns[0])
    np.testing.assert_array_equal(batch(population).returns, together.returns)


def test_learn_refits_to_the_elites_and_samples_the_next_population(cartpole):
    cfg = cem.Config(population_size=20, elite_frac=0.2, episodes_per_candidate=2, extra_std=0.5,
                     extra_decay_time=4)
    state = cem.init(cfg, cartpole, jax.random.PRNGKey(0))
    played = np.asarray(cem.policy(cfg, state))
    np.testing.assert_array_equal(played, np.repeat(state.population, 2, axis=0))  # each candidate twice in a row
    returns = np.random.default_rng(1).uniform(0, 100, 40).astype(np.float32)
    new, metrics = jax.jit(lambda s, e, k: cem.learn(cfg, cartpole, s, e, k))(
        state, Episodes(returns, returns), jax.random.PRNGKey(2))
    scores = returns.reshape(20, 2).mean(1)
    elite = np.argsort(-scores)[:num_elites(20, 0.2)]
    np.testing.assert_allclose(new.cem.mean, state.population[elite].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new.cem.std, state.population[elite].std(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose([metrics[k] for k in ("mean_return", "max_return", "elite_return", "std")],
                               [scores.mean(), scores.max(), scores[elite].mean(), new.cem.std.mean()], rtol=1e-5)
    assert int(new.cem.iteration) == 1 and new.population.shape == state.population.shape
    assert not np.allclose(new.population, state.population)
    np.testing.assert_array_equal(cem.final_policy(cfg, new), new.cem.mean)


def test_init_draws_the_first_population_with_the_extra_noise(cartpole):
    cfg = cem.Config(population_size=4000, init_std=0.5, extra_std=1.2)
    state = cem.init(cfg, cartpole, jax.random.PRNGKey(0))
    assert state.population.shape == (4000, cem.num_params(cfg, cartpole)) == (4000, 10)
    assert state.population.dtype == np.float32
    np.testing.assert_allclose(state.cem.mean, 0.0)
    np.testing.assert_allclose(state.cem.std, 0.5)
    np.testing.assert_allclose(state.population.mean(0), 0.0, atol=0.06)
    np.testing.assert_allclose(state.population.std(0), np.sqrt(0.5**2 + 1.2**2), rtol=0.04)
    other = cem.init(cfg, cartpole, jax.random.PRNGKey(1))
    assert not np.allclose(other.population, state.population)


def test_numpy_policy_matches_the_jax_policy():
    rng = np.random.default_rng(0)
    for env_id, hidden, activation in (("CartPole-v1", (8,), "tanh"), ("Pendulum-v1", (6, 5), "relu"),
                                       ("Acrobot-v1", (), "tanh")):
        env = envs.make(env_id)
        cfg = cem.Config(env=env_id, hidden=hidden, activation=activation)
        theta = rng.normal(size=cem.num_params(cfg, env)).astype(np.float32)
        obs = rng.normal(size=(16, *env.obs_shape)).astype(np.float32)
        ours, _ = jax.jit(cem.act(cfg, env, True))(theta, obs, (), None)
        host, _ = cem.host_act(cfg, env, theta, None, rng)(obs, ())
        if env.discrete:
            np.testing.assert_array_equal(host, ours)
            assert ours.shape == (16,)
        else:
            np.testing.assert_allclose(host, ours, rtol=1e-5, atol=1e-5)
            assert ours.shape == (16, 1)


def test_continuous_actions_on_pendulum():
    env = envs.make("Pendulum-v1")
    cfg = cem.Config(env="Pendulum-v1", iterations=2, population_size=6, elite_frac=0.5, hidden=(8,))
    result = cem.ALGO.train(cfg, env, jax.random.PRNGKey(0), seeds=2)
    assert result.history["mean_return"].shape == (2, 2) and np.isfinite(result.history["mean_return"]).all()
    assert (result.history["mean_return"] < 0).all()  # Pendulum's rewards are negative
    returns = cem.ALGO.evaluate(cfg, env, *cem.ALGO.seed_policy(cfg, result, 1), jax.random.PRNGKey(1), 3)
    assert returns.shape == (3,) and np.isfinite(returns).all()


def test_host_backend_improves_over_the_initial_population():
    env = envs.make("gym:CartPole-v1")
    cfg = cem.Config(env="gym:CartPole-v1", iterations=5, population_size=30, elite_frac=0.2)
    result = cem.ALGO.train(cfg, env, jax.random.PRNGKey(0), seeds=1)
    first = result.history["mean_return"][0, 0]  # the initial population's mean return
    assert result.history["mean_return"][0, -1] > 2 * first, result.history["mean_return"]
    assert result.history["episode_count"][0, 0] == 30
    returns = cem.ALGO.evaluate(cfg, env, *cem.ALGO.seed_policy(cfg, result, 0), jax.random.PRNGKey(1), 10)
    assert returns.mean() > 4 * first, (returns, first)


@pytest.mark.parametrize("change, words", [
    (dict(iterations=0), "iterations"), (dict(population_size=1), "population_size"),
    (dict(population_size=2.5), "population_size"), (dict(elite_frac=0.0), "elite_frac"),
    (dict(elite_frac=1.5), "elite_frac"), (dict(init_std=0.0), "init_std"), (dict(extra_std=-1.0), "extra_std"),
    (dict(extra_decay_time=0), "extra_decay_time"), (dict(episodes_per_candidate=0), "episodes_per_candidate"),
    (dict(hidden=(32, 0)), "hidden"), (dict(activation="sigmoid"), "activation"),
    (dict(population_size=10, elite_frac=0.05, extra_std=0.0), "collapses"),
])
def test_bad_configs_raise_config_error(change, words):
    with pytest.raises(ConfigError, match=words):
        dataclasses.replace(cem.Config(), **change).validate()
    assert cem.Config().validate() == cem.Config()
