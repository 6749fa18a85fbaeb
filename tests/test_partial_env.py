"""Partially observed envs: the kept observation entries equal the base env's, on both backends."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.envs.partial import NO_VELOCITY, NO_VELOCITY_IDS, no_velocity_id
from surrogate.errors import ConfigError, EnvNotFoundError

IDS = sorted(NO_VELOCITY_IDS)


def test_ids_follow_rl_zoo_and_are_listed():
    assert no_velocity_id("CartPole-v1") == "CartPoleNoVel-v1"
    assert no_velocity_id("MountainCarContinuous-v0") == "MountainCarContinuousNoVel-v0"
    listed = envs.list_envs()
    for env_id in IDS:
        assert env_id in listed["jax"] and env_id in listed["host"]
        assert envs.make(env_id).backend == "jax" and envs.make("gym:" + env_id).backend == "host"


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_shape_facts(env_id):
    base_id, idx = NO_VELOCITY_IDS[env_id], list(NO_VELOCITY[NO_VELOCITY_IDS[env_id]])
    for prefix in ("", "gym:"):
        env, base = envs.make(prefix + env_id), envs.make(prefix + base_id)
        assert env.id == env_id and env.obs_shape == (len(idx),)
        space, base_space = env.observation_space(), base.observation_space()
        for bound in ("low", "high"):
            want = np.broadcast_to(np.asarray(getattr(base_space, bound)), base.obs_shape)[idx]
            np.testing.assert_array_equal(np.broadcast_to(np.asarray(getattr(space, bound)), env.obs_shape), want)
        for fact in ("discrete", "action_dim", "max_episode_steps", "backend"):
            assert getattr(env, fact) == getattr(base, fact)
        np.testing.assert_array_equal(np.asarray(env.action_bounds, float), np.asarray(base.action_bounds, float))


def _jax_run(env, num_steps=300, num_envs=4):
    """``num_steps`` random-action steps of ``step`` (and of ``step_to`` with resets from ``env.reset``)."""
    def run(key):
        k0, k1 = jax.random.split(key)
        obs0, state = jax.vmap(env.reset)(jax.random.split(k0, num_envs))
        space = env.action_space()

        def body(state, key):
            ka, ks, kr = jax.random.split(key, 3)
            actions = jax.vmap(space.sample)(jax.random.split(ka, num_envs))
            reset = jax.vmap(env.reset)(jax.random.split(kr, num_envs))
            out = jax.vmap(env.step)(jax.random.split(ks, num_envs), state, actions)
            out_to = jax.vmap(env.step_to)(jax.random.split(ks, num_envs), state, actions, reset)
            return out[1], (out[0], out[3], out[4]["final_observation"], out_to[0], out_to[4]["final_observation"])

        return obs0, jax.lax.scan(body, state, jax.random.split(k1, num_steps))[1]

    return jax.jit(run)(jax.random.key(0))


@pytest.mark.parametrize("env_id", ["CartPoleNoVel-v1", "PendulumNoVel-v1", "MountainCarNoVel-v0"])
def test_jax_observations_are_the_base_ones_at_kept_indices(env_id):
    base_id = NO_VELOCITY_IDS[env_id]
    idx = list(NO_VELOCITY[base_id])
    (obs0, (obs, done, final, obs_to, final_to)) = _jax_run(envs.make(env_id))
    (b_obs0, (b_obs, b_done, b_final, b_obs_to, b_final_to)) = _jax_run(envs.make(base_id))
    assert obs.shape == (*b_obs.shape[:-1], len(idx))
    np.testing.assert_array_equal(done, b_done)
    assert np.asarray(done).sum() >= 4  # episodes ended (terminated or truncated at 200): resets covered
    for got, want in ((obs0, b_obs0), (obs, b_obs), (final, b_final), (obs_to, b_obs_to), (final_to, b_final_to)):
        np.testing.assert_array_equal(got, np.asarray(want)[..., idx])
    assert not np.array_equal(final, obs)  # final_observation is the pre-reset one where done


@pytest.mark.parametrize("env_id", ["gym:CartPoleNoVel-v1", "gym:MountainCarContinuousNoVel-v0"])
def test_host_observations_are_the_base_ones_at_kept_indices(env_id):
    base_id = NO_VELOCITY_IDS[env_id.removeprefix("gym:")]
    idx = list(NO_VELOCITY[base_id])
    env, base = envs.make(env_id), envs.make("gym:" + base_id)
    venv, bvenv = env.vector(3, seed=7), base.vector(3, seed=7)
    np.testing.assert_array_equal(venv.obs, bvenv.obs[:, idx])
    rng, ends = np.random.default_rng(0), 0
    space = env.action_space()
    for _ in range(120):
        a = rng.integers(0, space.n, 3) if env.discrete else rng.uniform(-1, 1, (3, *space.shape)).astype(np.float32)
        obs, rew, term, trunc, final = venv.step(a)
        b_obs, b_rew, b_term, b_trunc, b_final = bvenv.step(a)
        assert obs.shape == (3, len(idx)) and env.observation_space().contains(obs[0])
        np.testing.assert_array_equal(obs, b_obs[:, idx])
        np.testing.assert_array_equal(final, b_final[:, idx])
        np.testing.assert_array_equal(rew, b_rew)
        np.testing.assert_array_equal(term | trunc, b_term | b_trunc)
        ends += int((term | trunc).sum())
    assert ends >= 1 or not env.discrete  # random CartPole episodes end well within 120 steps
    venv.close(), bvenv.close()


def test_keep_obs_on_any_vector_env_both_backends():
    env = envs.make("CartPole-v1", keep_obs=(3, 1))
    assert env.id == "CartPole-v1[keep_obs=3,1]" and env.obs_shape == (2,)
    obs, _ = env.reset(jax.random.key(3))
    b_obs, _ = envs.make("CartPole-v1").reset(jax.random.key(3))
    np.testing.assert_array_equal(obs, b_obs[jnp.array([3, 1])])
    host = envs.make("gym:Acrobot-v1", keep_obs=[4])
    assert host.obs_shape == (1,) and host.id != "Acrobot-v1"
    np.testing.assert_array_equal(host.vector(2, seed=1).obs, envs.make("gym:Acrobot-v1").vector(2, seed=1).obs[:, [4]])
    # a subset of a subset indexes the partial observation
    twice = envs.make("gym:CartPoleNoVel-v1", keep_obs=(1,))
    np.testing.assert_array_equal(twice.vector(2, seed=0).obs, envs.make("gym:CartPole-v1").vector(2, seed=0).obs[:, [2]])


@pytest.mark.parametrize("bad", [(4,), (-1,), (), (0, 0), (0.5,), (True,)])
def test_bad_indices_are_config_errors(bad):
    for env_id in ("CartPole-v1", "gym:CartPole-v1"):
        with pytest.raises(ConfigError, match="keep_obs"):
            envs.make(env_id, keep_obs=bad)


def test_non_vector_observations_and_unknown_ids():
    with pytest.raises(ConfigError, match="vector observation"):
        envs.make("Breakout-MinAtar", keep_obs=(0,))
    with pytest.raises(EnvNotFoundError, match="CartPoleNoVel-v1"):
        envs.make("CartPoleNoVell-v1")
