"""DeepSea through ``surrogate.envs.make``: bsuite's definition, step for step against a transcription of
bsuite's ``DeepSea._step`` written here (google-deepmind/bsuite, ``bsuite/environments/deep_sea.py``)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.envs.deep_sea import bsuite_action_mapping
from surrogate.errors import ConfigError, EnvNotFoundError


class BsuiteDeepSea:
    """bsuite's deterministic DeepSea in plain Python: the reference."""

    def __init__(self, size, mapping):
        self.size, self.mapping = size, mapping
        self.reset()

    def obs(self):
        out = np.zeros((self.size, self.size), np.float32)
        if self.row < self.size:
            out[self.row, self.column] = 1.0
        return out

    def reset(self):
        self.row = self.column = 0
        return self.obs()

    def step(self, action):
        reward = 0.0
        right = action == self.mapping[self.row, self.column]
        if self.column == self.size - 1 and right:
            reward += 1.0
        if right:
            self.column = min(self.column + 1, self.size - 1)
            reward -= 0.01 / self.size
        else:
            self.column = max(self.column - 1, 0)
        self.row += 1
        return self.obs(), reward, self.row == self.size


@pytest.fixture(scope="module")
def sea20():
    return envs.make("DeepSea-bsuite-20")


@pytest.fixture(scope="module")
def step20(sea20):
    return jax.jit(lambda k, s, a, r: sea20.step_to(k, s, a, r))


def test_ids_sizes_and_spaces(sea20):
    assert sea20.id == "DeepSea-bsuite-20" and sea20.backend == "jax"
    assert sea20.obs_shape == (20, 20) and sea20.discrete and sea20.action_dim == 2
    assert sea20.max_episode_steps == 20
    assert envs.make("DeepSea-bsuite", size=12).id == "DeepSea-bsuite-12"
    assert envs.make("DeepSea-bsuite").obs_shape == (8, 8)  # gymnax's default size
    assert "DeepSea-bsuite-20" in envs.list_envs()["jax"]
    with pytest.raises(ConfigError, match="has size 20, but size=30"):
        envs.make("DeepSea-bsuite-20", size=30)
    with pytest.raises(EnvNotFoundError):
        envs.make("DeepSea-bsuite-21")


def test_action_mapping_is_bsuites(sea20):
    obs, state = sea20.reset(jax.random.PRNGKey(0))
    want = np.random.RandomState(0).binomial(1, 0.5, [20, 20])
    np.testing.assert_array_equal(state.action_mapping, want)
    np.testing.assert_array_equal(bsuite_action_mapping(20, 0), want)
    assert 0.35 < want.mean() < 0.65  # a random mapping, not the debug all-ones one
    _, other = envs.make("DeepSea-bsuite", size=20, mapping_seed=3).reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(other.action_mapping, np.random.RandomState(3).binomial(1, 0.5, [20, 20]))


def test_steps_match_bsuite_transcription(sea20, step20):
    """Random action sequences over four episodes: observations (one-hot; zeros at the end), rewards,
    episode ends and the auto-reset equal the reference's."""
    ref = BsuiteDeepSea(20, bsuite_action_mapping(20, 0))
    obs, state = sea20.reset(jax.random.PRNGKey(0))
    reset = sea20.reset(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(obs, ref.reset())
    rng = np.random.default_rng(0)
    rewards = []
    for t in range(80):
        a = int(rng.integers(2)) if t < 60 else int(ref.mapping[ref.row, ref.column])  # last episode: always right
        want_obs, want_r, want_done = ref.step(a)
        obs, state, r, done, info = step20(jax.random.PRNGKey(t), state, jnp.int32(a), reset)
        np.testing.assert_array_equal(info["final_observation"], want_obs)
        assert float(r) == pytest.approx(want_r, abs=1e-6) and bool(done) == want_done
        assert bool(info["terminated"]) == want_done
        if want_done:
            np.testing.assert_array_equal(obs, ref.reset())  # auto-reset to the top-left
        else:
            np.testing.assert_array_equal(obs, want_obs)
        rewards.append(float(r))
    assert sum(rewards[60:]) == pytest.approx(0.99, abs=1e-5)  # the treasure: 1 - 20 x 0.01 / 20


def test_always_right_and_always_left_returns(sea20):
    """The optimal policy returns 0.99 in 20 steps; 'always left' 0 (it never pays the move cost)."""
    mapping = jnp.asarray(bsuite_action_mapping(20, 0))

    def episode(right: bool):
        _, state = sea20.reset(jax.random.PRNGKey(0))
        total = 0.0
        for t in range(20):
            a = mapping[state.row, state.column]
            _, state, r, done, _ = sea20.step(jax.random.PRNGKey(t), state, a if right else 1 - a)
            total += float(r)
            assert bool(done) == (t == 19)
        return total

    assert episode(True) == pytest.approx(0.99, abs=1e-5)
    assert episode(False) == 0.0
