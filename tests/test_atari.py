"""Atari (``surrogate.envs.atari``): the standard preprocessing's observable behaviour on real games, the
training/evaluation semantics on a scripted backend, the two implementations agreeing, and PPO's pixel
path (micro-batched gradients and chunked forward passes equal to one pass)."""
import dataclasses

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import actor_critic as ac
from surrogate.algos import ppo
from surrogate.envs.atari import AtariEnv, AtariVector
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import init_carry, rollout_spec, host_rollout


def play(venv, actions):
    """Step ``venv`` through ``actions [T, N]``; the stacked ``(obs, reward, term, trunc)``."""
    out = [venv.step(a)[:4] for a in actions]
    return [np.stack(x) for x in zip(*out)]


@pytest.fixture(scope="module")
def breakout():
    return envs.make("ALE/Breakout-v5")


def test_make_gives_preprocessed_uint8_nhwc_frames():
    env = envs.make("ALE/Pong-v5")
    assert isinstance(env, AtariEnv) and env.backend == "host"
    assert env.obs_shape == (84, 84, 4) and env.action_dim == 6 and env.discrete
    venv = env.vector(2, seed=0)
    obs, reward, term, trunc, final = venv.step(np.zeros(2, np.int64))
    venv.close()
    assert obs.shape == final.shape == (2, 84, 84, 4) and obs.dtype == np.uint8
    assert reward.dtype == np.float32 and term.dtype == trunc.dtype == bool
    with pytest.raises(ConfigError, match="frameskip"):
        envs.make("ALE/Pong-v5", frameskip=1)
    with pytest.raises(ConfigError, match="implementation"):
        envs.make("ALE/Pong-v5", implementation="envpool")


@pytest.mark.parametrize("implementation", ["ale_vector", "gymnasium_async"])
def test_frame_stack_order_life_loss_and_clipping_on_breakout(implementation):
    """Newest frame last, zeros before an episode's first frame; on the same seed and actions the training
    and evaluation envs play the same game, training seeing sign(reward) and a lost life as terminal."""
    env = envs.make("ALE/Breakout-v5", implementation=implementation)
    train, test = env.vector(2, seed=3), env.eval_vector(2, seed=3)
    first = train.obs
    assert not first[..., :3].any() and first[..., 3].any()  # reset: one frame, zero padding before it
    actions = np.random.default_rng(0).integers(0, env.action_dim, (300, 2))
    obs_t, rew_t, term_t, trunc_t = play(train, actions)
    obs_e, rew_e, term_e, trunc_e = play(test, actions)
    train.close(), test.close()
    np.testing.assert_array_equal(obs_t, obs_e)  # the same game: a lost life does not reset it
    np.testing.assert_array_equal(rew_t, np.sign(rew_e))
    assert rew_e.max() >= 1 and not trunc_t.any()
    assert (term_t >= term_e).all() and term_t.sum() > term_e.sum()  # life losses: terminal in training only
    running = ~(term_e | trunc_e)[1:]  # consecutive observations inside a game share 3 frames
    np.testing.assert_array_equal(obs_t[1:, ..., :3][running], obs_t[:-1, ..., 1:][running])
    life_lost = term_t[1:] & ~term_e[1:]
    np.testing.assert_array_equal(obs_t[1:, ..., :3][life_lost], obs_t[:-1, ..., 1:][life_lost])


def test_seeded_runs_repeat(breakout):
    actions = np.random.default_rng(1).integers(0, breakout.action_dim, (100, 2))
    runs = [play(breakout.vector(2, seed=s), actions) for s in (7, 7, 8)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[2][0])  # another seed: other no-op starts


def test_implementations_agree_in_shape_and_semantics():
    """Not bit for bit (FIRE and no-op accounting and the resize code differ), but the same spaces, the same
    reset frame up to a few grey levels, the same episode ends on Pong (21 points to one side)."""
    a, b = (envs.make("ALE/Pong-v5", implementation=i) for i in ("ale_vector", "gymnasium_async"))
    assert a.obs_shape == b.obs_shape and a.action_dim == b.action_dim
    va, vb = a.vector(2, seed=0), b.vector(2, seed=0)
    assert va.obs.shape == vb.obs.shape and va.obs.dtype == vb.obs.dtype == np.uint8
    diff = np.abs(va.obs[..., 3].astype(int) - vb.obs[..., 3].astype(int)).mean()
    assert diff < 3.0, diff  # greyscale Pong court, 84x84, area interpolation in both
    actions = np.random.default_rng(0).integers(0, 6, (1200, 2))
    for venv in (va, vb):
        _, reward, term, _ = play(venv, actions)
        ends = term.any(axis=0)
        assert ends.all()  # a random Pong player loses within ~1000 steps
        returns, lengths, count = venv.finished_episodes()
        assert count == term.sum() and -21 * count <= returns < -15 * count
        venv.close()


class Scripted:
    """A raw vector env (ale-py's interface) of 1 env with scripted rewards, lives and game overs."""

    def __init__(self, rewards, lives, game_over):
        self.script = list(zip(rewards, lives, game_over))
        self.t = 0

    def reset(self, seed=None):
        return np.zeros((1, 4, 84, 84), np.uint8), {"lives": np.array([3])}

    def step(self, actions):
        r, lives, over = self.script[self.t]
        self.t += 1
        obs = np.full((1, 4, 84, 84), self.t, np.uint8)
        return (obs, np.array([r], np.int32), np.array([over]), np.array([False]),
                {"lives": np.array([lives]), "final_obs": obs + 100})

    def close(self):
        pass


# a life lost at step 1, game over at step 3 (the lives then are the next game's, as ale-py's same-step reset gives)
SCRIPT = dict(rewards=[4, 0, -7, 1, 0, 2], lives=[3, 2, 2, 3, 3, 3], game_over=[0, 0, 0, 1, 0, 0])


def test_training_clips_and_ends_lives_evaluation_does_not():
    train, test = (AtariVector(Scripted(**SCRIPT), 1, training) for training in (True, False))
    for venv in (train, test):
        venv.reset(seed=0)
    _, rt, tt, _ = play(train, np.zeros((6, 1), np.int64))
    _, re, te, _ = play(test, np.zeros((6, 1), np.int64))
    np.testing.assert_array_equal(rt[:, 0], [1, 0, -1, 1, 0, 1])
    np.testing.assert_array_equal(re[:, 0], SCRIPT["rewards"])
    np.testing.assert_array_equal(tt[:, 0], [0, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(te[:, 0], [0, 0, 0, 1, 0, 0])
    for venv in (train, test):  # both record the game's episode: unclipped, over all lives
        assert venv.finished_episodes() == (-2.0, 4.0, 1)
        assert venv.finished_episodes() == (0.0, 0.0, 0)


def test_rollout_logs_the_game_scores_not_the_clipped_rewards():
    venv = AtariVector(Scripted(**SCRIPT), 1, training=True)
    obs, _ = venv.reset(seed=0)
    config = ppo.Config(num_envs=1, num_steps=6)
    spec = rollout_spec(config, envs.make("ALE/Pong-v5"))
    carry = init_carry(None, obs, np)
    carry, batch, finished = host_rollout(spec, venv, lambda o, c: (np.zeros(1, np.int64), c), carry)
    assert batch.obs.dtype == np.uint8 and batch.rewards[:, 0].tolist() == [1, 0, -1, 1, 0, 1]
    assert tuple(finished) == (-2.0, 4.0, 1)
    np.testing.assert_array_equal(batch.next_obs[3], 104)  # the frame the game ended on, before the reset


# ----------------------------------------------------------------------------- PPO's pixel path


@pytest.fixture(scope="module")
def cnn_setup():
    env = envs.make("ALE/Pong-v5")
    config = dataclasses.replace(ppo.PRESETS["atari"], num_envs=2, num_steps=32, num_minibatches=1,
                                 total_steps=64, micro_batch=16).validate()
    learner = ppo.make_learner(config, env)
    params = ac.initial_params(learner, env.obs_shape, jax.random.PRNGKey(0))
    return env, config, learner, params


def test_atari_preset_is_cleanrl_ppo_atari():
    c = ppo.PRESETS["atari"].validate()
    assert (c.env, c.num_envs, c.num_steps, c.num_epochs, c.num_minibatches) == ("ALE/Pong-v5", 8, 128, 4, 4)
    assert (c.learning_rate, c.anneal_lr, c.clip_eps, c.ent_coef, c.vf_coef, c.max_grad_norm) == (
        2.5e-4, True, 0.1, 0.01, 0.5, 0.5)
    assert (c.gamma, c.gae_lambda, c.network, c.normalize_obs, c.total_steps) == (
        0.99, 0.95, "nature_cnn", False, 10_000_000)
    with pytest.raises(ConfigError, match="micro_batch"):
        dataclasses.replace(c, micro_batch=48).validate()  # does not divide the minibatch of 256


def test_micro_batched_gradient_equals_one_pass(cnn_setup):
    env, config, learner, params = cnn_setup
    rng = np.random.default_rng(0)
    n = 64
    mb = ac.UpdateData(obs=jnp.asarray(rng.integers(0, 256, (n, 84, 84, 4), dtype=np.uint8)),
                       actions=jnp.asarray(rng.integers(0, 6, n)),
                       old_log_probs=jnp.asarray(np.log(1 / 6) + 0.05 * rng.standard_normal(n), jnp.float32),
                       old_values=jnp.asarray(0.1 * rng.standard_normal(n), jnp.float32),
                       advantages=jnp.asarray(1.0 + rng.standard_normal(n), jnp.float32),
                       targets=jnp.asarray(rng.standard_normal(n), jnp.float32))
    whole = dataclasses.replace(config, micro_batch=0, num_steps=32, num_envs=2)
    micro = dataclasses.replace(config, micro_batch=16)
    assert ac.micro_batches(micro) == 4 and ac.micro_batches(whole) == 1

    def grad(c):
        loss_config = ac.micro_loss_config(c)
        loss = lambda p, b: ppo.joint_loss(p, loss_config, learner, b)
        return jax.jit(lambda p, b: ac.minibatch_grad(c, loss, p, b))(params, mb)

    (g1, m1), (g2, m2) = grad(whole), grad(micro)
    for k in m1:
        np.testing.assert_allclose(m2[k], m1[k], rtol=1e-4, atol=1e-6, err_msg=k)
    assert float(m1["clip_frac"]) > 0  # the clipped branch is exercised
    flat1, flat2 = jax.flatten_util.ravel_pytree(g1)[0], jax.flatten_util.ravel_pytree(g2)[0]
    np.testing.assert_allclose(flat2, flat1, rtol=1e-3, atol=1e-6 * float(jnp.abs(flat1).max()))
    assert float(jnp.abs(flat1).max()) > 0


def test_chunked_forward_equals_one_pass(cnn_setup):
    env, config, learner, params = cnn_setup
    obs = jnp.asarray(np.random.default_rng(2).integers(0, 256, (5, 7, 84, 84, 4), dtype=np.uint8))
    f = jax.jit(lambda o, rows: ac.in_chunks(lambda x: learner.network.apply(params, x), o, rows),
                static_argnums=1)
    (logits1, v1), (logits2, v2) = f(obs, 0), f(obs, 16)  # 35 rows: 3 chunks, the last one padded
    assert logits2.shape == (5, 7, 6) and v2.shape == (5, 7)
    np.testing.assert_allclose(logits2, logits1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(v2, v1, rtol=1e-4, atol=1e-5)


def test_host_update_equals_learn(cnn_setup):
    """The host runs' update (Python loop over jitted minibatch steps) is ``learn``'s update."""
    from surrogate.runtime.rollout import Batch, Experience
    from surrogate.core.normalize import init_stats

    env, config, learner, _ = cnn_setup
    config = dataclasses.replace(config, num_epochs=2, num_minibatches=2).validate()  # minibatches of 32: 2 micro
    state = ppo.init(config, env, jax.random.PRNGKey(1))
    rng = np.random.default_rng(3)
    T, N = config.num_steps, config.num_envs
    frames = rng.integers(0, 256, (T + 1, N, 84, 84, 4), dtype=np.uint8)
    dones = rng.random((T, N)) < 0.05
    batch = Batch(frames[:-1], rng.integers(0, 6, (T, N)), rng.choice([-1.0, 0.0, 1.0], (T, N)).astype(np.float32),
                  dones, dones, frames[1:])
    experience = Experience(batch, init_stats((84, 84, 4), np))
    key = jax.random.PRNGKey(2)
    s1, m1 = jax.jit(lambda s, e, k: ppo.learn(config, env, s, e, k))(state, experience, key)
    s2, m2 = ppo.host_update(config, env)(state, experience, key)
    for k in m1:
        np.testing.assert_allclose(m2[k], m1[k], rtol=1e-4, atol=1e-6, err_msg=k)
    p1, p2 = jax.flatten_util.ravel_pytree(s1.params)[0], jax.flatten_util.ravel_pytree(s2.params)[0]
    p0 = jax.flatten_util.ravel_pytree(state.params)[0]
    assert float(jnp.abs(p1 - p0).max()) > 1e-6  # it learned something
    np.testing.assert_allclose(p2, p1, rtol=1e-4, atol=1e-6)


def test_actor_critic_computes_the_shared_torso_once(cnn_setup):
    """``ActorCritic.__call__`` gives what ``policy`` and ``value`` give; its gradient has the Nature CNN's 8
    convolutions (3 forward, 3 for the kernels, 2 for the inputs), not 13 (the torso's backward pass once
    per head)."""
    from surrogate.core.networks import ActorCritic

    env, config, learner, params = cnn_setup
    net = learner.network
    obs = jnp.asarray(np.random.default_rng(4).integers(0, 256, (8, 84, 84, 4), dtype=np.uint8))
    l1, v1 = net.apply(params, obs, method=ActorCritic.policy), net.apply(params, obs, method=ActorCritic.value)
    l2, v2 = net.apply(params, obs)
    np.testing.assert_allclose(l2, l1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v2, v1, rtol=1e-5, atol=1e-6)
    loss = lambda p: sum(jnp.sum(x) for x in net.apply(p, obs))
    assert jax.jit(jax.grad(loss)).lower(params).compile().as_text().count("convolution(") == 8


def test_evaluation_plays_whole_games_with_the_game_rewards():
    """``host_episodes`` (what ``evaluate`` and eval.json run) takes an env's ``eval_vector``: on the script,
    the game's -2 over 4 steps, not the training envs' first life (+1 over 2 steps)."""
    from surrogate.runtime.rollout import host_episodes

    class ScriptedGame:
        vector = lambda self, n, seed: AtariVector(Scripted(**SCRIPT), n, training=True)
        eval_vector = lambda self, n, seed: AtariVector(Scripted(**SCRIPT), n, training=False)

    spec = rollout_spec(ppo.Config(num_envs=1), envs.make("ALE/Pong-v5"))
    episodes = host_episodes(spec, ScriptedGame(), lambda o, c: (np.zeros(1, np.int64), c), 0, 1)
    assert episodes.returns.tolist() == [-2.0] and episodes.lengths.tolist() == [4.0]
