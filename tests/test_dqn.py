import surrogate  # noqa: F401  (first: sets the host device count before jax is imported)
import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from surrogate import checkpoint, envs, run
from surrogate.core.q_networks import lecun_normal_np
from surrogate.algos import dqn, get
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import Batch, Experience

# A small config that trains in a second: 4 envs x 5 steps per iteration, 2 minibatch steps of 16.
SMALL = dqn.Config(total_steps=2_000, num_envs=4, num_steps=5, buffer_size=500, learning_starts=100, batch_size=16,
                   gradient_steps=2, hidden=(16, 16), exploration_fraction=0.3)
# For single calls of learn on hand-made rollouts of 20 transitions (one compile shared by the tests).
TINY = dataclasses.replace(SMALL, buffer_size=32, learning_starts=40)


@functools.lru_cache(maxsize=None)
def jit_learn(cfg, env):
    return jax.jit(lambda s, e, k: dqn.learn(cfg, env, s, e, k))


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


def batch(T, N, start=0, terminations=None, dones=None):
    """A rollout whose transition ids (t * N + n + start) are written into every field."""
    ids = start + np.arange(T * N, dtype=np.float32).reshape(T, N)
    zeros = np.zeros((T, N), bool)
    return Batch(np.repeat(ids[..., None], 4, -1), (ids % 2).astype(np.int32), ids,
                 zeros if terminations is None else terminations, zeros if dones is None else dones,
                 np.repeat(ids[..., None] + 0.5, 4, -1))


def test_registered_and_presets_valid():
    assert get("dqn") is dqn.ALGO
    for name, cfg in dqn.PRESETS.items():
        cfg.validate()
    assert dqn.Config() == dqn.PRESETS["cartpole-rejax"]
    assert dqn.ALGO.num_iterations(dqn.Config()) == 10_000  # rejax: 100k steps of 10 envs
    assert dqn.ALGO.num_iterations(dqn.PRESETS["cartpole-zoo"]) == 195  # 195 x 256 = 49,920 steps


@pytest.mark.parametrize("change, words", [
    (dict(batch_size=0), "batch_size must be > 0"),
    (dict(gamma=1.5), "gamma must be in [0, 1]"),
    (dict(tau=1.0), "tau = 1"),
    (dict(buffer_size=5), "buffer_size (5) must hold"),
    (dict(total_steps=5), "smaller than one iteration"),
    (dict(learning_starts=-1), "learning_starts must be >= 0"),
    (dict(hidden=()), "hidden must list"),
    (dict(exploration_fraction=2.0), "exploration_fraction must be in [0, 1]"),
])
def test_validate_names_the_problem(change, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        dataclasses.replace(dqn.Config(), **change).validate()


def test_continuous_actions_refused():
    with pytest.raises(ConfigError, match="DQN needs discrete actions; Pendulum-v1"):
        dqn.ALGO.train(dqn.Config(env="Pendulum-v1"), envs.make("Pendulum-v1"), jax.random.PRNGKey(0))


def test_epsilon_schedule():
    cfg = dqn.Config(total_steps=1_000, num_envs=2, num_steps=5, eps_start=0.9, eps_end=0.1,
                     exploration_fraction=0.5, learning_starts=100)
    eps = lambda steps: float(dqn.epsilon(cfg, jnp.int32(steps)))
    assert eps(0) == eps(90) == 1.0  # uniform actions while the iteration does not train (90 + 10 <= 100)
    assert eps(100) == pytest.approx(0.9 - 0.8 * 100 / 500)
    assert eps(250) == pytest.approx(0.5)
    assert eps(500) == pytest.approx(0.1) and eps(999) == pytest.approx(0.1)
    # the rejax preset follows rejax's optax.linear_schedule(1, 0.05, 50_000) of the steps before an iteration
    rejax = dqn.PRESETS["cartpole-rejax"]
    sched = optax.linear_schedule(1.0, 0.05, 50_000)
    for steps in (5_010, 12_340, 49_990, 50_000, 77_770):
        assert float(dqn.epsilon(rejax, jnp.int32(steps))) == pytest.approx(float(sched(steps)), abs=1e-6)
    assert float(dqn.epsilon(rejax, jnp.int32(4_990))) == 1.0


def test_act_is_epsilon_greedy_from_bits(cartpole):
    cfg = SMALL
    state = dqn.init(cfg, cartpole, jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (4000, 4))
    greedy = np.asarray(dqn.q_values(cfg, cartpole, state.params, obs).argmax(-1))
    bits = jax.random.bits(jax.random.PRNGKey(2), (4000, 2))
    act = jax.jit(dqn.act(cfg, cartpole, False))
    a0, _ = act((state.params, 0.0), obs, (), bits)
    a1, _ = act((state.params, 1.0), obs, (), bits)
    a3, _ = act((state.params, 0.3), obs, (), bits)
    np.testing.assert_array_equal(a0, greedy)
    np.testing.assert_array_equal(a1, np.asarray(bits[:, 1]) % 2)  # every action random
    # with eps 0.3: random with probability 0.3, so the action differs from greedy half of those times
    assert abs(np.mean(np.asarray(a3) != greedy) - 0.15) < 0.02
    det, _ = dqn.act(cfg, cartpole, True)((state.params, 1.0), obs, (), None)
    np.testing.assert_array_equal(det, greedy)


@pytest.mark.parametrize("dueling, activation", [(True, "swish"), (False, "relu")])
def test_init_matches_flax_and_host_act_matches_jax(cartpole, dueling, activation):
    cfg = dataclasses.replace(SMALL, dueling=dueling, activation=activation)
    state = dqn.init(cfg, cartpole, jax.random.PRNGKey(3))
    net = dqn.network(cfg, cartpole)
    want = jax.eval_shape(net.init, jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    assert jax.tree.structure(want) == jax.tree.structure(state.params)
    assert jax.tree.map(lambda x: x.shape, want) == jax.tree.map(lambda x: x.shape, state.params)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(state.target)):
        np.testing.assert_array_equal(a, b)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    greedy = np.asarray(dqn.q_values(cfg, cartpole, state.params, obs).argmax(-1))
    act_np = dqn.host_act(cfg, cartpole, (state.params, 0.0), None, np.random.default_rng(0))
    np.testing.assert_array_equal(act_np(obs, ())[0], greedy)
    act_np = dqn.host_act(cfg, cartpole, (state.params, 1.0), None, np.random.default_rng(0))
    assert 0.35 < np.mean(act_np(np.repeat(obs, 20, 0), ())[0]) < 0.65  # uniform over the two actions


def test_lecun_normal_np_moments():
    w = lecun_normal_np(np.random.default_rng(0), (400, 300))
    assert abs(w.std() - np.sqrt(1 / 400)) < 0.002 and np.abs(w).max() <= 2 * np.sqrt(1 / 400) / 0.8796 + 1e-6


def hand_network(cfg, env):
    """Q(s) = (s_0, s_1) for s_0, s_1 >= 0: a 4 -> 2 -> 2 relu net that copies two inputs."""
    state = dqn.init(cfg, env, jax.random.PRNGKey(0))
    pick = np.zeros((4, 2), np.float32)
    pick[0, 0] = pick[1, 1] = 1.0
    params = {"params": {"MLP_0": {"Dense_0": {"kernel": pick, "bias": np.zeros(2, np.float32)}},
                         "Dense_0": {"kernel": np.eye(2, dtype=np.float32), "bias": np.zeros(2, np.float32)}}}
    assert jax.tree.structure(params) == jax.tree.structure(state.params)
    return params


def test_td_targets_hand_values(cartpole):
    """Transitions: a normal step, a termination, a truncation (next_obs = the final observation)."""
    cfg = dataclasses.replace(SMALL, hidden=(2,), activation="relu", dueling=False, gamma=0.9)
    params = hand_network(cfg, cartpole)
    next_obs = np.array([[3, 0, 0, 0], [0, 1, 0, 0], [0, 7, 0, 0]], np.float32)  # online argmax: 0, 1, 1
    next_q_target = jnp.array([[1.0, 5.0], [10.0, 20.0], [4.0, 2.0]])
    mb = dqn.Transition(np.zeros((3, 4), np.float32), np.zeros(3, np.int32), np.array([1.0, 2.0, 3.0]),
                        np.array([0.0, 1.0, 0.0]), next_obs)
    y = dqn.td_targets(dataclasses.replace(cfg, double_q=False), cartpole, params, mb, next_q_target)
    np.testing.assert_allclose(y, [1 + 0.9 * 5, 2.0, 3 + 0.9 * 4], rtol=1e-6)
    y = dqn.td_targets(cfg, cartpole, params, mb, next_q_target)  # double Q: evaluate the online argmax
    np.testing.assert_allclose(y, [1 + 0.9 * 1, 2.0, 3 + 0.9 * 2], rtol=1e-6)
    # the loss of Q(s, a) against them: obs (2, 0, ...) has Q = (2, 0); actions 0 -> errors 2 - y
    mb = mb._replace(obs=np.tile(np.array([[2, 0, 0, 0]], np.float32), (3, 1)))
    err = 2.0 - np.asarray(y)
    for loss, want in (("l2", 0.5 * err**2), ("huber", np.where(np.abs(err) <= 1, 0.5 * err**2, np.abs(err) - 0.5))):
        got, q_mean = dqn.td_loss(dataclasses.replace(cfg, loss=loss), cartpole, params, mb, next_q_target)
        np.testing.assert_allclose(got, want.mean(), rtol=1e-6)
        assert float(q_mean) == 2.0


@pytest.mark.parametrize("bootstrap_truncation", [True, False])
def test_learn_stores_terminal_flags(cartpole, bootstrap_truncation):
    """A termination never bootstraps; a truncation (done, not terminated) bootstraps from its final
    observation unless ``bootstrap_truncation`` is off (rejax's semantics)."""
    cfg = dataclasses.replace(TINY, bootstrap_truncation=bootstrap_truncation)
    term = np.array([[True, False, False, False]] * 5)
    done = np.array([[True, True, False, False]] * 5)
    state = dqn.init(cfg, cartpole, jax.random.PRNGKey(0))
    state, _ = jit_learn(cfg, cartpole)(state, Experience(batch(5, 4, 0, term, done), None), jax.random.PRNGKey(1))
    stored = np.asarray(state.replay.items.terminal[:20]).reshape(5, 4)
    np.testing.assert_array_equal(stored, (term if bootstrap_truncation else done).astype(np.float32))


def test_replay_keeps_newest_and_training_starts_after_learning_starts(cartpole):
    learn = jit_learn(TINY, cartpole)
    state = dqn.init(TINY, cartpole, jax.random.PRNGKey(0))
    first = state.params
    for i in range(2):  # 40 transitions: not more than learning_starts, no gradient step
        state, m = learn(state, Experience(batch(5, 4, 20 * i), None), jax.random.PRNGKey(i))
        assert float(m["q_loss"]) == 0.0 and float(m["epsilon"]) == 1.0
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)
    state, m = learn(state, Experience(batch(5, 4, 40), None), jax.random.PRNGKey(2))
    assert float(m["q_loss"]) > 0 and float(m["buffer_size"]) == 32 and int(state.steps) == 60
    assert not np.array_equal(jax.tree.leaves(first)[0], jax.tree.leaves(state.params)[0])
    # the newest 32 of the 60 transitions (ids 28..59), each in the slot id % 32, fields kept together
    items = jax.tree.map(np.asarray, state.replay.items)
    np.testing.assert_array_equal(np.sort(items.reward), np.arange(28, 60))
    np.testing.assert_array_equal(items.reward % 32, np.arange(32))
    np.testing.assert_array_equal(items.obs[:, 0], items.reward)
    np.testing.assert_array_equal(items.next_obs[:, 3], items.reward + 0.5)
    np.testing.assert_array_equal(items.action, items.reward % 2)


def three_iterations(cfg, env):
    """``(target before, online after, target after)`` of each of three calls of learn."""
    state = dqn.init(cfg, env, jax.random.PRNGKey(0))
    out = []
    for i in range(3):
        old_target = state.target
        state, _ = jit_learn(cfg, env)(state, Experience(batch(5, 4, 20 * i), None), jax.random.PRNGKey(i))
        out.append((old_target, state.params, state.target))
    return out


def test_target_update_polyak_and_periodic_copy(cartpole):
    # Polyak after every iteration, 0.98 old + 0.02 online (the online network trains in the third)
    for old, online, new in three_iterations(TINY, cartpole):
        for o, p, n in zip(*map(jax.tree.leaves, (old, online, new))):
            np.testing.assert_allclose(n, 0.98 * np.asarray(o) + 0.02 * np.asarray(p), rtol=1e-5, atol=1e-7)
    cfg = dataclasses.replace(TINY, learning_starts=0, tau=0.0, target_update_interval=2)
    (old1, _, new1), (_, online2, new2), (_, online3, new3) = three_iterations(cfg, cartpole)
    for a, b, c, d, e, f in zip(*map(jax.tree.leaves, (old1, new1, online2, new2, new3, online3))):
        np.testing.assert_array_equal(a, b)  # iteration 1: kept
        np.testing.assert_array_equal(c, d)  # iteration 2: copied
        np.testing.assert_array_equal(d, e)  # iteration 3: kept
    assert not np.array_equal(jax.tree.leaves(new3)[0], jax.tree.leaves(online3)[0])


# ----------------------------------------------------------------------------- whole runs


def test_resume_continues_the_same_run(tmp_path, cartpole, monkeypatch):
    """Interrupted after 50 of 100 iterations and resumed from the checkpoint (buffer included, its arrays
    written raw and read back memory-mapped): the same metrics and final state, replay buffer included,
    as the run without interruption."""
    monkeypatch.setattr(checkpoint, "EXTERNAL", 1024)  # the buffer's arrays go after the header, as a big one's
    whole = run.train_in_dir(tmp_path / "whole", "dqn", SMALL, seeds=2, checkpoint_every=25, stop_after=100)
    run.train_in_dir(tmp_path / "cut", "dqn", SMALL, seeds=2, checkpoint_every=25, stop_after=50)
    state, _, done = checkpoint.load(tmp_path / "cut" / run.CKPT,
                                     dqn.ALGO.state_template(SMALL, cartpole, jax.random.PRNGKey(0), 2))
    assert done == 50 and int(np.asarray(state.algo.replay.size)[0]) == 500
    assert isinstance(state.algo.replay.items.obs, np.memmap)
    resumed = run.train_in_dir(tmp_path / "cut", resume=True, algo="dqn")
    assert set(resumed.history) == set(whole.history) and whole.history["q_loss"].shape == (2, 100)
    for k in whole.history:
        np.testing.assert_array_equal(resumed.history[k], whole.history[k], err_msg=k)
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state)):
        np.testing.assert_array_equal(a, b)
    assert (whole.history["q_loss"][:, -1] > 0).all() and (whole.history["q_loss"][:, :4] == 0).all()
    assert not np.allclose(whole.history["q_loss"][0], whole.history["q_loss"][1])  # the seeds differ


def test_host_backend_learns():
    """gym:CartPole-v1 in the runtime's Python loop (NumPy acting): 20k steps beat a random policy's ~22."""
    cfg = dataclasses.replace(dqn.Config(), env="gym:CartPole-v1", total_steps=20_000, num_envs=4, num_steps=4,
                              learning_starts=1_000, exploration_fraction=0.2, gradient_steps=2, batch_size=64)
    env = envs.make(cfg.env)
    result = dqn.ALGO.train(cfg, env, jax.random.PRNGKey(0))
    returns = dqn.ALGO.evaluate(cfg, env, *dqn.ALGO.seed_policy(cfg, result, 0), jax.random.PRNGKey(1), 20)
    assert returns.mean() >= 150, returns
    assert result.history["episode_count"].shape == (1, 1250)


@pytest.mark.slow
def test_dqn_reaches_475_on_cartpole_for_4_of_4_seeds(cartpole):
    """Preset ``cartpole`` (rejax's config, truncations bootstrapped, a 128-128 net), 100k steps, 4 seeds
    in one jitted, sharded run."""
    cfg = dqn.PRESETS["cartpole"]
    result = dqn.ALGO.train(cfg, cartpole, jax.random.PRNGKey(0), seeds=4)
    returns = [float(dqn.ALGO.evaluate(cfg, cartpole, *dqn.ALGO.seed_policy(cfg, result, i), jax.random.PRNGKey(7),
                                       20).mean()) for i in range(4)]
    assert min(returns) >= 475, returns
