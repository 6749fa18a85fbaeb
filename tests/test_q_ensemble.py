import surrogate  # noqa: F401  (first: sets the host device count before jax is imported)
import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import checkpoint, envs, run
from surrogate.algos import dqn, get, q_ensemble as qe
from surrogate.core.ensemble import ucb_actions, vote_actions
from surrogate.core.td import q_targets
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import Batch, Experience, init_carry, jax_rollout, rollout_spec

SMALL = qe.Config(total_steps=2_000, num_envs=4, num_steps=5, buffer_size=500, learning_starts=100, batch_size=16,
                  gradient_steps=2, hidden=(16, 16), num_heads=4)
TINY = dataclasses.replace(SMALL, buffer_size=32, learning_starts=40)
NAMES = ("ensemble_ucb", "bootstrapped_dqn", "ensemble_voting")


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@functools.lru_cache(maxsize=None)
def jit_learn(cfg, env):
    return jax.jit(lambda s, e, k: qe.learn(cfg, env, s, e, k))


def test_registered_presets_valid_and_errors(cartpole):
    assert get("ensemble_ucb") is qe.UCB and get("bootstrapped_dqn") is qe.BOOTSTRAPPED
    assert get("ensemble_voting") is qe.VOTING
    for algo in (qe.UCB, qe.BOOTSTRAPPED, qe.VOTING):
        for cfg in algo.presets.values():
            cfg.validate()
    cfg = qe.Config()
    assert (cfg.num_heads, cfg.ucb_lambda, cfg.mask_prob) == (10, 0.1, 0.5)
    for change, words in [(dict(mask_prob=0.0), "mask_prob must be in (0, 1]"), (dict(num_heads=0), "num_heads"),
                          (dict(ucb_lambda=-1.0), "ucb_lambda and prior_scale must be >= 0"),
                          (dict(batch_size=0), "batch_size must be > 0")]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            dataclasses.replace(cfg, **change).validate()
    with pytest.raises(ConfigError, match="need discrete actions"):
        qe.init(SMALL, envs.make("Pendulum-v1"), jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="needs image observations"):
        qe.init(dataclasses.replace(SMALL, network="minatar_cnn"), cartpole, jax.random.PRNGKey(0))


@pytest.mark.parametrize("env_id, network", [("CartPole-v1", "mlp"), ("Breakout-MinAtar", "minatar_cnn")])
def test_init_matches_the_module_and_heads_differ(env_id, network):
    env = envs.make(env_id)
    cfg = dataclasses.replace(SMALL, network=network, prior_scale=1.0)
    state = qe.init(cfg, env, jax.random.PRNGKey(0))
    want = jax.eval_shape(qe.network(cfg, env).init, jax.random.PRNGKey(0), jnp.zeros((1, *env.obs_shape)))
    for part in (state.params["online"], state.params["prior"], state.target):
        assert jax.tree.map(lambda x: x.shape, part) == jax.tree.map(lambda x: x.shape, want)
    heads = state.params["online"]["params"]["heads_kernel"]
    assert heads.shape[0] == 4 and not np.allclose(heads[0], heads[1])
    obs = jnp.zeros((3, *env.obs_shape)) + 0.5
    assert qe.q_values(cfg, env, state.params, obs).shape == (4, 3, env.action_dim)


def test_acting_rules(cartpole):
    cfg = SMALL
    state = qe.init(cfg, cartpole, jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (2000, 4)) * 3
    q = qe.q_values(cfg, cartpole, state.params, obs)
    bits = jax.random.bits(jax.random.PRNGKey(2), (2000, 3))
    carry = qe.initial_carry(cfg, cartpole, 2000)
    ucb = qe.UCB.act(cfg, cartpole, False)
    a, _ = ucb((state.params, 0.0), obs, carry, bits)
    np.testing.assert_array_equal(a, ucb_actions(q, 0.1))
    assert (np.asarray(ucb_actions(q, 0.1)) != np.asarray(ucb_actions(q, 0.0))).any()  # the bonus matters here
    det, _ = qe.UCB.act(cfg, cartpole, True)((state.params, 1.0), obs, carry, None)
    np.testing.assert_array_equal(det, ucb_actions(q, 0.0))
    a, _ = qe.VOTING.act(cfg, cartpole, False)((state.params, 0.0), obs, carry, bits)
    np.testing.assert_array_equal(a, vote_actions(q))
    det, _ = qe.BOOTSTRAPPED.act(cfg, cartpole, True)((state.params, 0.0), obs, carry, None)
    np.testing.assert_array_equal(det, vote_actions(q))
    # epsilon 0.4 on top: random (bits[2] % 2) where the coin from bits[1] falls below 0.4
    a, _ = qe.VOTING.act(cfg, cartpole, False)((state.params, 0.4), obs, carry, bits)
    coin = ((np.asarray(bits[:, 1]) >> 9) / 2.0**23) < 0.4
    np.testing.assert_array_equal(a, np.where(coin, np.asarray(bits[:, 2]) % 2, vote_actions(q)))
    # bootstrapped DQN with carry 0 draws head bits[0] % K and follows it; the carry keeps head + 1
    a, new = qe.BOOTSTRAPPED.act(cfg, cartpole, False)((state.params, 0.0), obs, carry, bits)
    head = np.asarray(bits[:, 0]) % 4
    np.testing.assert_array_equal(new, head + 1)
    np.testing.assert_array_equal(a, np.asarray(q).argmax(-1)[head, np.arange(2000)])
    a2, kept = qe.BOOTSTRAPPED.act(cfg, cartpole, False)((state.params, 0.0), obs, new, bits[::-1])
    np.testing.assert_array_equal(kept, new)
    np.testing.assert_array_equal(a2, a)


def test_bootstrapped_head_constant_within_episodes_and_redrawn_after():
    """DeepSea 10 (episodes of exactly 10 steps) x 256 envs for 3 episodes; two heads that always pick
    actions 0 and 1: each episode's actions are constant, episodes pick both heads about equally, and the
    next episode's head is a fresh draw (it differs from the last one about half the time)."""
    env = envs.make("DeepSea-bsuite-10")
    cfg = dataclasses.replace(SMALL, num_heads=2, env=env.id)
    params = qe.init(cfg, env, jax.random.PRNGKey(0)).params
    params["online"]["params"]["heads_kernel"] = np.zeros_like(params["online"]["params"]["heads_kernel"])
    params["online"]["params"]["heads_bias"] = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    n = 256
    spec = rollout_spec(cfg, env, qe.act_words(cfg, env), num_steps=30)
    obs, state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), n))
    carry = init_carry(state, obs, jnp, qe.initial_carry(cfg, env, n))
    act = qe.BOOTSTRAPPED.act(cfg, env, False)
    rollout = jax.jit(lambda c, k: jax_rollout(spec, env, act, (params, 0.0), c, k))
    carry, batch, _ = rollout(carry, jax.random.PRNGKey(2))
    actions = np.asarray(batch.actions).reshape(3, 10, n)  # [episode, step, env]
    np.testing.assert_array_equal(np.asarray(batch.dones).reshape(3, 10, n)[:, -1], True)
    assert (actions == actions[:, :1]).all()  # constant within each episode
    heads = actions[:, 0]  # [episode, env]
    assert abs(heads.mean() - 0.5) < 0.08
    changed = (heads[1:] != heads[:-1]).mean()
    assert 0.4 < changed < 0.6
    np.testing.assert_array_equal(carry.policy_carry, 0)  # the third episode just ended: the runtime zeroed it


def batch(T, N, start=0):
    ids = start + np.arange(T * N, dtype=np.float32).reshape(T, N)
    zeros = np.zeros((T, N), bool)
    return Batch(np.repeat(ids[..., None], 4, -1) / 100, (ids % 2).astype(np.int32), ids / 100, zeros, zeros,
                 np.repeat(ids[..., None] + 0.5, 4, -1) / 100)


def test_masks_stored_beside_transitions(cartpole):
    cfg = dataclasses.replace(TINY, buffer_size=400, mask_prob=0.7)
    learn, state = jit_learn(cfg, cartpole), qe.init(cfg, cartpole, jax.random.PRNGKey(0))
    for i in range(10):
        state, _ = learn(state, Experience(batch(5, 4, 20 * i), None), jax.random.PRNGKey(i))
    items = jax.tree.map(np.asarray, state.replay.items)
    assert items.mask.shape == (400, 4) and set(np.unique(items.mask[:200])) == {0.0, 1.0}
    assert abs(items.mask[:200].mean() - 0.7) < 4 * np.sqrt(0.21 / 800)
    np.testing.assert_array_equal(items.mask[200:], 0.0)  # empty slots
    np.testing.assert_allclose(items.reward[:200], np.arange(200) / 100, rtol=1e-6)


def test_masked_head_gets_no_gradient_and_loss_by_hand(cartpole, monkeypatch):
    """One transition with mask (1, 0, 1, 0): heads 1 and 3 get exactly zero gradient; the loss is the
    sum over the included heads of 0.5 * (Q_k(s, a) - y_k)^2, y_k double DQN from target k. Each head's
    gradient is its own TD loss's (not divided by K: Osband et al.'s heads); the torso's is 1/K of what
    the same loss sends into it without the gradient scaling (the heads' mean)."""
    cfg = TINY
    state = qe.init(cfg, cartpole, jax.random.PRNGKey(0))
    online, prior = state.params["online"], state.params["prior"]
    target = jax.tree.map(lambda x: x * 0.5, online)
    obs, next_obs = np.array([[0.1, -0.2, 0.3, 0.4]], np.float32), np.array([[0.2, 0.1, -0.1, 0.0]], np.float32)
    mb = qe.Transition(obs, np.array([1], np.int32), np.array([0.5], np.float32), np.array([0.0], np.float32),
                       next_obs, np.array([[1.0, 0.0, 1.0, 0.0]], np.float32))
    nq = qe.q_values(cfg, cartpole, {"online": target, "prior": prior}, next_obs)
    loss, _ = qe.ensemble_loss(cfg, cartpole, online, prior, mb, nq)
    q, q_next = (np.asarray(qe.q_values(cfg, cartpole, state.params, o))[:, 0] for o in (obs, next_obs))
    td_error = {k: q[k, 1] - float(q_targets(jnp.array([0.5]), jnp.array([0.0]), nq[k], jnp.asarray(q_next[k][None]),
                                             gamma=cfg.gamma)[0]) for k in (0, 2)}
    assert float(loss) == pytest.approx(sum(0.5 * e**2 for e in td_error.values()), rel=1e-5)
    loss_of = lambda p: qe.ensemble_loss(cfg, cartpole, p, prior, mb, nq)[0]
    grads = jax.grad(loss_of)(online)["params"]
    for k in (1, 3):
        assert not np.asarray(grads["heads_kernel"][k]).any() and not np.asarray(grads["heads_bias"][k]).any()
    for k, e in td_error.items():  # a lone head's TD gradient: d/db_k 0.5 (Q_k(s, a) - y_k)^2 = (Q_k(s, a) - y_k) e_a
        np.testing.assert_allclose(grads["heads_bias"][k], np.eye(2)[1] * e, rtol=1e-4, atol=1e-7)
    monkeypatch.setattr(qe, "scale_gradient", lambda x, scale: x)
    unscaled = jax.grad(loss_of)(online)["params"]
    np.testing.assert_allclose(unscaled["heads_kernel"], grads["heads_kernel"], rtol=1e-5, atol=1e-8)
    jax.tree.map(lambda g, u: np.testing.assert_allclose(g, u / cfg.num_heads, rtol=1e-4, atol=1e-8),
                 grads["MLP_0"], unscaled["MLP_0"])
    assert np.abs(np.asarray(grads["MLP_0"]["Dense_0"]["kernel"])).sum() > 0


@pytest.mark.parametrize("opt", ["adam", "centered_rmsprop"])
def test_one_head_on_every_transition_is_double_dqn(cartpole, opt):
    """K = 1 and mask_prob = 1: the ensemble's gradient steps are double DQN's (``dqn.gradient_steps``, tested on
    its own against hand targets) from the same parameters on the same minibatches, with either optimiser (MinAtar's
    centered RMSprop, whose eps makes the step size follow the gradient's scale, included)."""
    cfg = dataclasses.replace(TINY, num_heads=1, mask_prob=1.0, opt=opt, loss="huber", learning_rate=0.01)
    dcfg = dataclasses.replace(cfg.as_dqn(), double_q=True, dueling=False)
    state = qe.init(cfg, cartpole, jax.random.PRNGKey(0))
    state = state._replace(target=jax.tree.map(lambda x: 0.7 * x + 0.01, state.params["online"]))
    rng, shape = np.random.default_rng(0), (cfg.gradient_steps, cfg.batch_size)
    obs, next_obs = (rng.normal(size=(*shape, 4)).astype(np.float32) for _ in range(2))
    action, reward = rng.integers(2, size=shape).astype(np.int32), rng.normal(size=shape).astype(np.float32)
    terminal = (rng.random(shape) < 0.2).astype(np.float32)
    ones = np.ones(shape, np.float32)
    online, _, loss, _, _ = qe.gradient_steps(cfg, cartpole, state, qe.Transition(obs, action, reward, terminal,
                                                                                  next_obs, ones[..., None]))

    def as_dqn(p):  # the one head is QNetwork's Dense_0
        p = p["params"]
        return {"params": {"MLP_0": p["MLP_0"], "Dense_0": {"kernel": p["heads_kernel"][0], "bias": p["heads_bias"][0]}}}

    params = as_dqn(state.params["online"])
    dstate = dqn.DQNState(params, as_dqn(state.target), dqn.optimizer(dcfg).init(params), None, 0)
    batches = (dqn.Transition(obs, action, reward, terminal, next_obs, ones.astype(np.int32)),
               np.zeros(shape, np.int32), ones)
    (want, *_), want_loss, _ = dqn.gradient_steps(dcfg, cartpole, dstate, batches)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), as_dqn(online), want)
    moved = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - b).max(), as_dqn(online), params)
    assert min(jax.tree.leaves(moved)) > 1e-4  # every layer took a step


def test_training_starts_after_learning_starts_and_target_copies(cartpole):
    cfg = dataclasses.replace(TINY, tau=0.0, target_update_interval=2)
    learn, state = jit_learn(cfg, cartpole), qe.init(cfg, cartpole, jax.random.PRNGKey(0))
    first = state.params["online"]
    for i in range(2):  # 40 transitions, not more than learning_starts: no step
        state, m = learn(state, Experience(batch(5, 4, 20 * i), None), jax.random.PRNGKey(i))
        assert float(m["q_loss"]) == 0.0 and float(m["epsilon"]) == 1.0
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(state.params["online"])):
        np.testing.assert_array_equal(a, b)
    old_target = state.target
    state, m = learn(state, Experience(batch(5, 4, 40), None), jax.random.PRNGKey(2))  # iteration 3: trains, kept
    assert float(m["q_loss"]) > 0 and float(m["q_std"]) > 0
    for a, b in zip(jax.tree.leaves(old_target), jax.tree.leaves(state.target)):
        np.testing.assert_array_equal(a, b)
    state, _ = learn(state, Experience(batch(5, 4, 60), None), jax.random.PRNGKey(3))  # iteration 4: copied
    for a, b in zip(jax.tree.leaves(state.params["online"]), jax.tree.leaves(state.target)):
        np.testing.assert_array_equal(a, b)


def test_resume_continues_the_same_run(tmp_path, cartpole):
    """bootstrapped_dqn (its head in the policy carry) interrupted at 50 of 100 iterations and resumed from
    the checkpoint: the same metrics and final state, buffer and masks included, as without interruption."""
    whole = run.train_in_dir(tmp_path / "whole", "bootstrapped_dqn", SMALL, seeds=2, checkpoint_every=25,
                             stop_after=100)
    run.train_in_dir(tmp_path / "cut", "bootstrapped_dqn", SMALL, seeds=2, checkpoint_every=25, stop_after=50)
    state, _, done = checkpoint.load(tmp_path / "cut" / run.CKPT,
                                     qe.BOOTSTRAPPED.state_template(SMALL, cartpole, jax.random.PRNGKey(0), 2))
    assert done == 50 and np.asarray(state.algo.replay.items.mask).shape == (2, 500, 4)
    resumed = run.train_in_dir(tmp_path / "cut", resume=True, algo="bootstrapped_dqn")
    for k in whole.history:
        np.testing.assert_array_equal(resumed.history[k], whole.history[k], err_msg=k)
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state)):
        np.testing.assert_array_equal(a, b)
    assert (whole.history["q_loss"][:, -1] > 0).all()


@pytest.mark.parametrize("name", ["bootstrapped_dqn", "ensemble_ucb"])
def test_host_backend_runs(name):
    """gym:CartPole-v1 in the runtime's Python loop (jitted acting with the carry on the host)."""
    cfg = dataclasses.replace(SMALL, env="gym:CartPole-v1", total_steps=600)
    env = envs.make(cfg.env)
    algo = get(name)
    result = algo.train(cfg, env, jax.random.PRNGKey(0))
    assert result.history["q_loss"].shape == (1, 30) and result.history["q_loss"][0, -1] > 0
    returns = algo.evaluate(cfg, env, *algo.seed_policy(cfg, result, 0), jax.random.PRNGKey(1), 3)
    assert returns.shape == (3,) and (returns >= 8).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_cartpole_learns(name, cartpole):
    """The cartpole preset (100k steps): the greedy (ensemble) policy of at least one of two seeds
    reaches 475 over 20 episodes."""
    algo = get(name)
    cfg = algo.presets["cartpole"]
    result = algo.train(cfg, cartpole, jax.random.PRNGKey(0), seeds=2)
    best = max(float(algo.evaluate(cfg, cartpole, *algo.seed_policy(cfg, result, i), jax.random.PRNGKey(9), 20).mean())
               for i in range(2))
    assert best >= 475, best
