import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.errors import EnvNotFoundError


def test_unknown_id_names_close_matches():
    with pytest.raises(EnvNotFoundError, match="CartPole-v1"):
        envs.make("CartPol-v1")
    with pytest.raises(EnvNotFoundError, match="surrogate envs"):
        envs.make("NoSuchThing-v9")


def test_list_envs_by_backend():
    ids = envs.list_envs()
    assert "CartPole-v1" in ids["jax"] and "Breakout-MinAtar" in ids["jax"]
    assert "Hopper-v5" in ids["host"] and "CartPole-v1" in ids["host"]
    assert envs.make("CartPole-v1").backend == "jax"
    assert envs.make("gym:CartPole-v1").backend == "host"
    assert envs.make("Hopper-v5").backend == "host"


def test_jax_env_auto_resets_and_reports_final_observation():
    env = envs.make("CartPole-v1")
    obs, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for t in range(600):
        new_obs, state, reward, done, info = step(jax.random.PRNGKey(t), state, jnp.int32(t % 2 == 0 and 1 or 1))
        if bool(done):
            break
        np.testing.assert_array_equal(info["final_observation"], new_obs)
    assert bool(done) and bool(info["terminated"])  # always pushing right falls over
    assert not np.allclose(info["final_observation"], new_obs)  # obs is the reset one
    assert np.all(np.abs(new_obs) <= 0.05)  # CartPole resets near zero


def test_host_vector_env_same_step_reset():
    env = envs.make("gym:CartPole-v1")
    venv = env.vector(2, seed=0)
    seen_done = False
    for _ in range(200):
        obs, reward, term, trunc, final = venv.step(np.ones(2, np.int64))
        for i in np.nonzero(term | trunc)[0]:
            seen_done = True
            assert not np.allclose(obs[i], final[i])
            assert np.all(np.abs(obs[i]) <= 0.05)
        for i in np.nonzero(~(term | trunc))[0]:
            np.testing.assert_array_equal(obs[i], final[i])
    venv.close()
    assert seen_done
    assert env.discrete and env.action_dim == 2 and env.obs_shape == (4,)


def test_episode_stats_from_buffers_match_a_step_by_step_count():
    from surrogate.runtime.rollout import episode_stats

    rng = np.random.default_rng(0)
    T, N = 50, 3
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    dones = rng.random((T, N)) < 0.1
    dones[:, 2] = False  # one env finishes no episode in this rollout
    ret0, len0 = np.array([1.5, 0.0, 2.0], np.float32), np.array([4.0, 0.0, 7.0], np.float32)
    ret, length = ret0.astype(np.float64).copy(), len0.copy()
    want = [0.0, 0.0, 0]
    for t in range(T):
        ret += rewards[t]
        length += 1
        for i in np.flatnonzero(dones[t]):
            want[0] += ret[i]
            want[1] += length[i]
            want[2] += 1
            ret[i], length[i] = 0.0, 0.0
    got, new_ret, new_len = episode_stats(rewards, dones, ret0, len0)
    np.testing.assert_allclose([got.return_sum, got.length_sum, got.count], want, rtol=1e-5)
    np.testing.assert_allclose(new_ret, ret, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(new_len, length)
