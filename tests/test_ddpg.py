import surrogate  # noqa: F401  (first: sets the host device count before jax is imported)
import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import checkpoint, cli, envs, run
from surrogate.algos import ddpg, get
from surrogate.core.distributions import noise_from_bits
from surrogate.core.noise import ou_stationary_variance, ou_step
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import Batch, Experience, init_carry, jax_rollout, rollout_spec

# A small config that trains in seconds: 2 envs x 5 steps per iteration, 2 gradient steps of 16.
SMALL = ddpg.Config(total_steps=600, num_envs=2, num_steps=5, gradient_steps=2, buffer_size=300, learning_starts=100,
                    batch_size=16, hidden=(16, 16), noise="ou", noise_sigma=0.3)
SMALL_FLAGS = ["--total-steps", "600", "--num-envs", "2", "--num-steps", "5", "--gradient-steps", "2",
               "--buffer-size", "300", "--learning-starts", "100", "--batch-size", "16", "--hidden", "16", "16",
               "--noise", "ou", "--noise-sigma", "0.3"]


@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-v1")


@functools.lru_cache(maxsize=None)
def jit_learn(cfg, env):
    return jax.jit(lambda s, e, k: ddpg.learn(cfg, env, s, e, k))


def rollout(T, N, rng, terminations=None, dones=None):
    """A random Pendulum-shaped rollout (actions in the env's [-2, 2])."""
    zeros = np.zeros((T, N), bool)
    return Batch(rng.normal(size=(T, N, 3)).astype(np.float32), rng.uniform(-2, 2, (T, N, 1)).astype(np.float32),
                 rng.normal(size=(T, N)).astype(np.float32), zeros if terminations is None else terminations,
                 zeros if dones is None else dones, rng.normal(size=(T, N, 3)).astype(np.float32))


def test_registered_and_presets_valid():
    assert get("ddpg") is ddpg.ALGO
    for cfg in ddpg.PRESETS.values():
        cfg.validate()
    assert ddpg.Config() == ddpg.PRESETS["pendulum"]
    r = ddpg.PRESETS["rllab"]  # Duan et al. 2016 / Lillicrap et al. 2016
    assert (r.hidden, r.critic_action_layer, r.noise, r.noise_theta, r.noise_sigma, r.critic_lr, r.actor_lr, r.tau,
            r.reward_scale, r.batch_size, r.learning_starts, r.gamma, r.random_warmup) == (
        (400, 300), 1, "ou", 0.15, 0.3, 1e-3, 1e-4, 1e-3, 0.1, 32, 10_000, 0.99, False)
    s = ddpg.PRESETS["sb3"]  # SB3 2.9.2 DDPG.__init__ defaults
    assert (s.hidden, s.critic_action_layer, s.actor_lr, s.critic_lr, s.buffer_size, s.learning_starts, s.batch_size,
            s.tau, s.gamma, s.num_steps, s.gradient_steps, s.noise, s.random_warmup, s.final_init) == (
        (400, 300), 0, 1e-3, 1e-3, 1_000_000, 100, 256, 0.005, 0.99, 1, 1, "none", True, 0.0)


@pytest.mark.parametrize("change, words", [
    (dict(tau=0.0), "tau must be in (0, 1]"),
    (dict(tau=1.5), "tau must be in (0, 1]"),
    (dict(gamma=1.5), "gamma must be in [0, 1]"),
    (dict(actor_lr=0.0), "actor_lr must be > 0"),
    (dict(batch_size=0), "batch_size must be > 0"),
    (dict(noise_theta=0.0), "noise_theta must be in (0, 1]"),
    (dict(noise_sigma=-0.1), "noise_sigma must be >= 0"),
    (dict(noise="gauss"), "noise must be 'ou', 'normal' or 'none'"),
    (dict(critic_action_layer=2), "critic_action_layer must name a layer"),
    (dict(hidden=()), "hidden must list"),
    (dict(buffer_size=5, num_envs=2, num_steps=5), "buffer_size (5) must hold"),
    (dict(total_steps=5, num_envs=2, num_steps=5), "smaller than one iteration"),
])
def test_validate_names_the_problem(change, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        dataclasses.replace(ddpg.Config(), **change).validate()


def test_discrete_actions_refused():
    with pytest.raises(ConfigError, match="DDPG needs continuous actions; CartPole-v1"):
        ddpg.ALGO.train(ddpg.Config(env="CartPole-v1"), envs.make("CartPole-v1"), jax.random.PRNGKey(0))


@pytest.mark.parametrize("layer", [0, 1])
def test_init_shapes_and_paper_init(pendulum, layer):
    cfg = dataclasses.replace(ddpg.PRESETS["rllab"], critic_action_layer=layer, buffer_size=10)
    s = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    shapes = lambda p: [p[f"Dense_{i}"]["kernel"].shape for i in range(len(p))]
    assert shapes(s.actor) == [(3, 400), (400, 300), (300, 1)]
    assert shapes(s.critic) == [(3 + (layer == 0), 400), (400 + (layer == 1), 300), (300, 1)]
    assert np.abs(s.critic["Dense_2"]["kernel"]).max() <= 3e-3 and np.abs(s.actor["Dense_1"]["kernel"]).max() > 0.04
    assert abs(np.abs(s.actor["Dense_0"]["kernel"]).max() - 1 / np.sqrt(3)) < 0.01  # U(+-1/sqrt(fan-in))
    for a, b in zip(jax.tree.leaves((s.actor, s.critic)), jax.tree.leaves((s.actor_target, s.critic_target))):
        np.testing.assert_array_equal(a, b)


def test_soft_update_by_hand():
    rng = np.random.default_rng(0)
    target, online = ({"a": rng.normal(size=(3, 2)), "b": rng.normal(size=4)} for _ in range(2))
    cfg = dataclasses.replace(SMALL, tau=0.1)
    new = ddpg.soft_update(cfg, target, online)
    for k in target:
        np.testing.assert_allclose(new[k], 0.1 * online[k] + 0.9 * target[k], rtol=1e-12)
    same = ddpg.soft_update(dataclasses.replace(SMALL, tau=1.0), target, online)
    np.testing.assert_array_equal(same["a"], online["a"])


def test_learn_updates_targets_softly_and_stores_terminations_only(pendulum):
    """One gradient step per iteration: each target is tau * online + (1 - tau) * the previous target; a
    truncation (done, not terminated) is stored as non-terminal, actions in [-1, 1] units."""
    cfg = dataclasses.replace(SMALL, learning_starts=0, gradient_steps=1, tau=0.05)
    rng = np.random.default_rng(0)
    term, done = np.zeros((5, 2), bool), np.zeros((5, 2), bool)
    term[1, 0] = done[1, 0] = done[3, 1] = True
    state = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    b = rollout(5, 2, rng, term, done)
    new, m = jit_learn(cfg, pendulum)(state, Experience(b, None), jax.random.PRNGKey(1))
    assert float(m["critic_loss"]) > 0 and int(new.steps) == 10 and int(new.replay.size) == 10
    for old, online, got in ((state.actor_target, new.actor, new.actor_target),
                             (state.critic_target, new.critic, new.critic_target)):
        for o, p, n in zip(*map(jax.tree.leaves, (old, online, got))):
            np.testing.assert_allclose(n, 0.05 * np.asarray(p) + 0.95 * np.asarray(o), rtol=1e-5, atol=1e-7)
    assert not np.array_equal(new.actor["Dense_0"]["kernel"], state.actor["Dense_0"]["kernel"])
    items = jax.tree.map(lambda x: np.asarray(x)[:10], new.replay.items)
    np.testing.assert_array_equal(items.terminal, term.reshape(-1).astype(np.float32))
    np.testing.assert_allclose(items.action, b.actions.reshape(-1, 1) / 2, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(items.next_obs, b.next_obs.reshape(-1, 3))


def test_no_training_before_learning_starts(pendulum):
    cfg = dataclasses.replace(SMALL, learning_starts=10)
    state = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    new, m = jit_learn(cfg, pendulum)(state, Experience(rollout(5, 2, np.random.default_rng(0)), None),
                                      jax.random.PRNGKey(1))
    assert float(m["critic_loss"]) == 0.0 and int(new.steps) == 10
    before, after = (state.actor, state.critic_target), (new.actor, new.critic_target)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(a, b)


def hand_networks(cfg, env):
    """mu'(s) = tanh(0.5 relu(s_0)); Q'(s, a) = relu(s_0) + 2 relu(a) + 0.5 (hidden width 2, a at the input)."""
    actor = {"Dense_0": {"kernel": np.zeros((3, 2), np.float32), "bias": np.zeros(2, np.float32)},
             "Dense_1": {"kernel": np.array([[0.5], [0.0]], np.float32), "bias": np.zeros(1, np.float32)}}
    actor["Dense_0"]["kernel"][0, 0] = 1.0
    critic = {"Dense_0": {"kernel": np.zeros((4, 2), np.float32), "bias": np.zeros(2, np.float32)},
              "Dense_1": {"kernel": np.array([[1.0], [2.0]], np.float32), "bias": np.array([0.5], np.float32)}}
    critic["Dense_0"]["kernel"][0, 0] = critic["Dense_0"]["kernel"][3, 1] = 1.0
    state = ddpg.init(cfg, env, jax.random.PRNGKey(0))
    assert jax.tree.map(np.shape, (actor, critic)) == jax.tree.map(np.shape, (state.actor, state.critic))
    return actor, critic


def test_critic_targets_hand_values(pendulum):
    """y = scale r + gamma (1 - term) Q'(s', mu'(s')): a normal step, a termination, a truncation (bootstraps)."""
    cfg = dataclasses.replace(SMALL, hidden=(2,), critic_action_layer=0, gamma=0.9, reward_scale=0.1, buffer_size=10)
    actor, critic = hand_networks(cfg, pendulum)
    next_obs = np.array([[1.0, 5, 5], [-1.0, 5, 5], [2.0, 5, 5]], np.float32)
    mb = ddpg.Transition(np.zeros((3, 3), np.float32), np.zeros((3, 1), np.float32),
                         np.array([1.0, 2.0, 3.0], np.float32), np.array([0.0, 1.0, 0.0], np.float32), next_obs)
    y = ddpg.critic_targets(cfg, actor, critic, mb)
    want = [0.1 + 0.9 * (1 + 2 * np.tanh(0.5) + 0.5), 0.2, 0.3 + 0.9 * (2 + 2 * np.tanh(1.0) + 0.5)]
    np.testing.assert_allclose(y, want, rtol=1e-6)
    # the loss: Q(s, a) at s = 0, a = (0.3, -1, 1) is 0.5 + 2 relu(a); mean squared error against y
    mb = mb._replace(action=np.array([[0.3], [-1.0], [1.0]], np.float32))
    q = 0.5 + 2 * np.maximum(mb.action[:, 0], 0)
    loss, q_mean = ddpg.critic_loss(cfg, critic, mb, jnp.asarray(want))
    np.testing.assert_allclose(loss, np.mean((q - np.array(want)) ** 2), rtol=1e-6)
    np.testing.assert_allclose(q_mean, q.mean(), rtol=1e-6)
    wd = dataclasses.replace(cfg, critic_weight_decay=0.01)  # + 0.5 wd |W|^2 over the kernels: 0.5 * 0.01 * 7
    np.testing.assert_allclose(ddpg.critic_loss(wd, critic, mb, jnp.asarray(want))[0], loss + 0.035, rtol=1e-6)


def test_actor_step_increases_q(pendulum):
    """After one update the new actor's actions have a higher Q (under the updated critic) than the old
    actor's, on the minibatch: the actor climbs Q (eq. 6)."""
    cfg = dataclasses.replace(SMALL, actor_lr=1e-3)
    state = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    mb = ddpg.Transition(*(jnp.asarray(np.random.default_rng(1).normal(size=s), jnp.float32)
                           for s in ((64, 3), (64, 1), (64,), (64,), (64, 3))))._replace(terminal=jnp.zeros(64))
    new, _ = ddpg.update(cfg, state, mb)
    q = lambda actor: float(ddpg.critic_apply(cfg, new.critic, mb.obs, ddpg.actor_apply(actor, mb.obs)).mean())
    assert q(new.actor) > q(state.actor)
    assert -q(new.actor) == pytest.approx(float(ddpg.actor_loss(cfg, new.actor, new.critic, mb.obs)), rel=1e-6)


def test_ou_statistics():
    """x' = x + theta (0 - x) + sigma eps: stationary mean 0, variance sigma^2 / (theta (2 - theta)) (dt = 1;
    not the continuous sigma^2 / (2 theta)), lag-1 autocorrelation 1 - theta."""
    theta, sigma, rng = 0.15, 0.3, np.random.default_rng(0)
    x, xs = np.zeros(4000), []
    for t in range(400):
        x = ou_step(x, rng.standard_normal(x.shape), theta, sigma)
        if t >= 100:  # burn-in: 0.85^100 ~ 1e-7 of the start left
            xs.append(x)
    xs = np.array(xs)
    var = ou_stationary_variance(theta, sigma)
    assert var == pytest.approx(0.09 / 0.2775)
    assert abs(xs.mean()) < 0.01 and abs(xs.var() - var) < 0.01 and abs(xs.var() - sigma**2 / (2 * theta)) > 0.015
    rho = np.mean((xs[1:] * xs[:-1])) / xs.var()
    assert abs(rho - (1 - theta)) < 0.01


def test_act_evolves_ou_state_from_bits(pendulum):
    cfg = dataclasses.replace(SMALL, random_warmup=False)
    state = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
    bits = jax.random.bits(jax.random.PRNGKey(2), (8, ddpg.act_words(cfg, pendulum)))
    x0 = jnp.full((8, 1), 0.2)
    a, x1 = jax.jit(ddpg.act(cfg, pendulum, False))(ddpg.policy(cfg, state), obs, x0, bits)
    np.testing.assert_allclose(x1, ou_step(x0, noise_from_bits(bits, False), 0.15, 0.3), rtol=1e-6)
    mu = ddpg.actor_apply(state.actor, obs)
    np.testing.assert_allclose(a, 2 * np.clip(mu + x1, -1, 1), rtol=1e-5, atol=1e-6)  # bounds +-2
    det, x = ddpg.act(cfg, pendulum, True)(ddpg.policy(cfg, state), obs, x0, None)
    np.testing.assert_allclose(det, 2 * mu, atol=1e-6)
    np.testing.assert_array_equal(x, x0)


def test_ou_state_resets_at_episode_ends(pendulum):
    """A JAX rollout of 201 steps of 512 envs with mu = 0: the noise (action / 2) has variance sigma^2 at
    each episode's first step (Pendulum's episodes end at step 200) and ~2.16 sigma^2 in the stationary
    state, so a carry not reset at the episode end would show."""
    cfg = dataclasses.replace(SMALL, num_envs=512, num_steps=201, noise_sigma=0.05, random_warmup=False)
    state = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    actor = jax.tree.map(np.zeros_like, state.actor)  # mu(s) = tanh(0) = 0
    obs, env_state = jax.vmap(pendulum.reset)(jax.random.split(jax.random.PRNGKey(1), 512))
    carry = init_carry(env_state, obs, jnp, ddpg.initial_carry(cfg, pendulum, 512))
    spec = rollout_spec(cfg, pendulum, ddpg.act_words(cfg, pendulum))
    run_it = jax.jit(lambda c, k: jax_rollout(spec, pendulum, ddpg.act(cfg, pendulum, False), (actor, False), c, k))
    _, batch, _ = run_it(carry, jax.random.PRNGKey(2))
    x = np.asarray(batch.actions)[..., 0] / 2
    assert np.asarray(batch.dones)[199].all() and not np.asarray(batch.dones)[:199].any()
    var = x.var(axis=1) / 0.05**2
    assert 0.75 < var[0] < 1.3 and 0.75 < var[200] < 1.3, var[[0, 200]]
    assert var[199] > 1.7 and abs(x[150:200].var() / 0.05**2 - 1 / (0.15 * 1.85)) < 0.2


def test_host_act_matches(pendulum):
    """NumPy acting: the actor as JAX computes it, OU noise from the generator, uniform actions in warm-up."""
    cfg = SMALL
    state = ddpg.init(cfg, pendulum, jax.random.PRNGKey(0))
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    x0 = np.full((64, 1), 0.1, np.float32)
    a, x1 = ddpg.host_act(cfg, pendulum, (state.actor, False), None, np.random.default_rng(5))(obs, x0)
    eps = np.random.default_rng(5).standard_normal((64, 1), np.float32)
    np.testing.assert_allclose(x1, 0.85 * x0 + 0.3 * eps, rtol=1e-5)
    mu = np.asarray(ddpg.actor_apply(state.actor, obs))
    np.testing.assert_allclose(a, 2 * np.clip(mu + x1, -1, 1), rtol=1e-4, atol=1e-5)
    a, _ = ddpg.host_act(cfg, pendulum, (state.actor, True), None, np.random.default_rng(5))(np.repeat(obs, 50, 0),
                                                                                            np.repeat(x0, 50, 0))
    assert a.min() >= -2 and a.max() <= 2 and abs(a.mean()) < 0.1 and abs(a.std() - 4 / np.sqrt(12)) < 0.05


# ----------------------------------------------------------------------------- whole runs


def test_cli_run_checkpoint_and_resume(tmp_path, pendulum, capsys):
    """`surrogate train ddpg` stopped after 20 of 60 iterations (a checkpoint holds the replay buffer and the
    OU states), then `--resume`: the same metrics and final state as the run without a stop."""
    flags = ["--runs-dir", str(tmp_path), "--checkpoint-every", "20", "--seeds", "2", "--no-progress",
             "--eval-episodes", "2"]
    assert cli.main(["train", "ddpg", "--env", "Pendulum-v1", *SMALL_FLAGS, "--name", "whole", *flags]) == 0
    assert "final return" in capsys.readouterr().out
    whole = run.load_result(tmp_path / "whole")[3]
    cfg = run.load_result(tmp_path / "whole")[1]
    assert cfg == SMALL
    run.train_in_dir(tmp_path / "cut", "ddpg", SMALL, seeds=2, checkpoint_every=20, stop_after=20)
    state, _, done = checkpoint.load(tmp_path / "cut" / run.CKPT,
                                     ddpg.ALGO.state_template(SMALL, pendulum, jax.random.PRNGKey(0), 2))
    assert done == 20 and int(np.asarray(state.algo.replay.size)[0]) == 200
    assert cli.main(["train", "ddpg", "--resume", str(tmp_path / "cut"), "--no-progress", "--eval-episodes", "2"]) == 0
    resumed = run.load_result(tmp_path / "cut")[3]
    assert whole.history["critic_loss"].shape == (2, 60)
    for k in whole.history:
        np.testing.assert_array_equal(resumed.history[k], whole.history[k], err_msg=k)
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state)):
        np.testing.assert_array_equal(a, b)
    assert (whole.history["critic_loss"][:, -1] > 0).all() and (whole.history["critic_loss"][:, :9] == 0).all()
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()


def test_host_backend_runs():
    """gym:Pendulum-v1 in the runtime's Python loop (NumPy acting with OU noise), a few hundred steps."""
    cfg = dataclasses.replace(SMALL, env="gym:Pendulum-v1", total_steps=400)
    env = envs.make(cfg.env)
    result = ddpg.ALGO.train(cfg, env, jax.random.PRNGKey(0))
    assert result.history["episode_count"].sum() == 2 and result.history["critic_loss"][0, -1] > 0
    returns = ddpg.ALGO.evaluate(cfg, env, *ddpg.ALGO.seed_policy(cfg, result, 0), jax.random.PRNGKey(1), 2)
    assert returns.shape == (2,) and (returns < 0).all()


@pytest.mark.slow
def test_ddpg_learns_pendulum(pendulum):
    """Preset ``pendulum``, 3 seeds vmapped in one jitted run: every seed's deterministic policy scores a mean
    return >= -250 over 20 episodes (a random policy: about -1200)."""
    cfg = ddpg.PRESETS["pendulum"]
    result = ddpg.ALGO.train(cfg, pendulum, jax.random.PRNGKey(0), seeds=3)
    returns = [float(ddpg.ALGO.evaluate(cfg, pendulum, *ddpg.ALGO.seed_policy(cfg, result, i), jax.random.PRNGKey(7),
                                        20).mean()) for i in range(3)]
    assert min(returns) >= -250, returns
