"""Update options of the on-policy methods against NumPy references: ``bootstrap_truncation=False`` in
``prepare`` (GAE with time limits as terminals), PPO's ``clip_value`` (value loss and its gradient),
TRPO-family ``fvp_fraction`` (the Fisher matrix of every k-th row) and VPG's first Adam step."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from surrogate import envs
from surrogate.algos import actor_critic as ac
from surrogate.algos import ppo, trpo, vpg
from surrogate.core.distributions import make_dist
from surrogate.core.networks import ActorCritic, join_params, split_params
from surrogate.core.normalize import init_stats
from surrogate.runtime import jax_driver
from surrogate.runtime.rollout import Batch, Experience, jax_rollout, rollout_spec


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


def np_params(params):
    return jax.tree.map(lambda x: np.array(x, np.float64), jax.device_get(params))


def np_normalize(adv):
    adv = np.asarray(adv, np.float64)
    return (adv - adv.mean()) / (adv.std() + 1e-8)


# ----------------------------------------------------------------------------- bootstrap_truncation


def gae_numpy(rewards, values, next_values, no_bootstrap, dones, gamma, lam):
    """GAE (Schulman et al. 2016, eq. 16) env by env, step by step, in float64."""
    adv = np.zeros_like(values)
    for n in range(values.shape[1]):
        carry = 0.0
        for t in reversed(range(values.shape[0])):
            delta = rewards[t, n] + gamma * (1.0 - no_bootstrap[t, n]) * next_values[t, n] - values[t, n]
            carry = delta + gamma * lam * (1.0 - dones[t, n]) * carry
            adv[t, n] = carry
    return adv


def test_prepare_without_bootstrap_truncation_treats_time_limits_as_terminal(cartpole):
    T, N, gamma, lam = 4, 2, 0.9, 0.8
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(T, N, 4)).astype(np.float32)
    next_obs = np.concatenate([obs[1:], rng.normal(size=(1, N, 4))]).astype(np.float32)
    # env 0 truncated (time limit) at t=1, env 1 terminated at t=2: next_obs there is the episode's final state,
    # obs[t + 1] the reset one
    next_obs[1, 0] = 2.0 * rng.normal(size=4)
    next_obs[2, 1] = 2.0 * rng.normal(size=4)
    terminations = np.zeros((T, N), bool)
    terminations[2, 1] = True
    dones = terminations.copy()
    dones[1, 0] = True
    rewards = np.array([[1.0, 0.5], [2.0, -1.0], [0.3, 1.5], [-0.7, 0.2]], np.float32)
    actions = rng.integers(0, 2, (T, N)).astype(np.int32)
    experience = Experience(Batch(obs, actions, rewards, terminations, dones, next_obs), init_stats((4,), np))

    results = {}
    for bootstrap in (True, False):
        cfg = ac.OnPolicyConfig(gamma=gamma, gae_lambda=lam, hidden=(8,), bootstrap_truncation=bootstrap)
        learner = ac.make_learner(cfg, cartpole)
        params = ac.initial_params(learner, cartpole.obs_shape, jax.random.PRNGKey(0))
        results[bootstrap] = ac.prepare(cfg, learner, params, experience)
    value = lambda o: np.asarray(learner.network.apply(params, o, method=ActorCritic.value), np.float64)
    v, v_next = value(obs), value(next_obs)
    # the values differ enough to tell the truncated episode's final state from the reset state after it
    assert abs(v_next[1, 0]) > 0.05 and abs(v_next[1, 0] - v[2, 0]) > 0.05, (v_next[1, 0], v[2, 0])

    terminal = gae_numpy(rewards, v, v_next, dones, dones, gamma, lam)  # truncation = termination
    bootstrapped = gae_numpy(rewards, v, v_next, terminations, dones, gamma, lam)
    for data, expected in ((results[False], terminal), (results[True], bootstrapped)):
        np.testing.assert_allclose(np.asarray(data.old_values), v.reshape(-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(data.advantages), expected.reshape(-1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(data.targets), (expected + v).reshape(-1), rtol=1e-5, atol=1e-5)

    # the two differ exactly along the truncated step's backward chain: gamma V(final) at t=1, discounted
    # by gamma lambda at t=0; nowhere else (env 1's termination and the batch end are handled alike)
    diff = (np.asarray(results[True].advantages) - np.asarray(results[False].advantages)).reshape(T, N)
    expected_diff = np.zeros((T, N))
    expected_diff[1, 0] = gamma * v_next[1, 0]
    expected_diff[0, 0] = gamma * lam * gamma * v_next[1, 0]
    np.testing.assert_allclose(diff, expected_diff, atol=1e-5)


# ----------------------------------------------------------------------------- clip_value


def critic_forward(critic, obs):
    """The critic MLP (one tanh hidden layer) in NumPy: (hidden activations, values)."""
    h = np.tanh(obs @ critic["Dense_0"]["kernel"] + critic["Dense_0"]["bias"])
    return h, h @ critic["Dense_1"]["kernel"][:, 0] + critic["Dense_1"]["bias"][0]


def value_loss_grads_numpy(critic, obs, targets, weight, vf_coef):
    """Gradient of ``vf_coef * 0.5 * mean(weight * (V - target)^2)`` (weight constant) in the critic's parameters."""
    h, v = critic_forward(critic, obs)
    e = vf_coef * weight * (v - targets) / len(v)  # d loss / d V_i
    w1 = critic["Dense_1"]["kernel"][:, 0]
    dz = e[:, None] * w1[None, :] * (1.0 - h ** 2)  # d loss / d pre-activations
    return {"Dense_0": {"kernel": obs.T @ dz, "bias": dz.sum(0)},
            "Dense_1": {"kernel": (h.T @ e)[:, None], "bias": np.array([e.sum()])}}


@pytest.mark.parametrize("clip_value", [False, True], ids=["plain", "clipped"])
def test_ppo_value_loss_and_gradient_with_and_without_clip_value(cartpole, clip_value):
    cfg = ppo.Config(hidden=(8,), clip_eps=0.2, vf_coef=0.5, clip_value=clip_value)
    learner = ppo.make_learner(cfg, cartpole)
    params = ac.initial_params(learner, cartpole.obs_shape, jax.random.PRNGKey(1))
    critic = np_params(split_params(params)[1]["critic"])
    B, rng = 32, np.random.default_rng(1)
    obs = rng.normal(size=(B, 4))
    _, v = critic_forward(critic, obs)
    np.testing.assert_allclose(np.asarray(learner.network.apply(params, obs.astype(np.float32),
                                                                method=ActorCritic.value)), v, rtol=1e-4, atol=1e-5)
    # every value has moved farther than clip_eps from its old value, up or down
    old_values = v - rng.uniform(0.3, 1.0, B) * rng.choice([-1.0, 1.0], B)
    targets = old_values + rng.normal(size=B)
    plain_err = (v - targets) ** 2
    clipped_err = (old_values + np.clip(v - old_values, -0.2, 0.2) - targets) ** 2
    unclipped_wins = plain_err > clipped_err
    assert 0 < unclipped_wins.sum() < B and np.abs(plain_err - clipped_err).min() > 1e-3  # both cases, no ties
    plain, clipped = 0.5 * plain_err.mean(), 0.5 * np.maximum(plain_err, clipped_err).mean()
    assert clipped - plain > 0.05

    logits = learner.network.apply(params, obs.astype(np.float32), method=ActorCritic.policy)
    actions = rng.integers(0, 2, B).astype(np.int32)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    mb = ac.UpdateData(f32(obs), jnp.asarray(actions), make_dist(logits, True).log_prob(actions), f32(old_values),
                       f32(rng.normal(size=B)), f32(targets))
    expected = clipped if clip_value else plain
    assert float(ppo.value_terms(cfg, f32(v), mb)) == pytest.approx(expected, rel=1e-5)

    grads, metrics = jax.grad(lambda p: ppo.joint_loss(p, cfg, learner, mb), has_aux=True)(params)
    assert float(metrics["value_loss"]) == pytest.approx(expected, rel=1e-4)
    # beyond clip_eps the clipped term is constant: only rows where the unclipped error is the larger carry gradient
    weight = unclipped_wins.astype(np.float64) if clip_value else np.ones(B)
    expected_grads = value_loss_grads_numpy(critic, obs, targets, weight, cfg.vf_coef)
    other_grads = value_loss_grads_numpy(critic, obs, targets, np.ones(B) if clip_value else
                                         unclipped_wins.astype(np.float64), cfg.vf_coef)
    got, want, other = (ravel_pytree(g)[0] for g in (grads["params"]["critic"], expected_grads, other_grads))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-3, atol=1e-5)
    assert np.abs(np.asarray(want) - np.asarray(other)).max() > 0.01  # the other form's gradient is far off


# ----------------------------------------------------------------------------- fvp_fraction


@pytest.fixture(scope="module")
def fvp_problem(cartpole):
    """A tiny categorical actor far from uniform, 32 rows whose even and odd rows come from different state
    distributions (so the Fisher matrix of obs[::2] differs from the full one), and the TNPG steps of
    ``policy_update`` with fvp_fraction 0.5 and 1."""
    base = trpo.Config(method="tnpg", hidden=(8,), cg_iters=300, cg_damping=0.05, max_kl=0.01)
    learner = trpo.make_learner(base, cartpole)
    params = ac.initial_params(learner, cartpole.obs_shape, jax.random.PRNGKey(2))
    actor, critic = split_params(params)
    actor = jax.tree.map(np.copy, actor)
    actor["actor"]["Dense_1"]["kernel"] *= 100.0  # output gain 0.01 -> 1: logits of order one
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(32, 4)).astype(np.float32)
    obs[1::2] = 2.5 * obs[1::2] + 1.0
    logits = learner.network.apply(join_params(actor, critic), obs, method=ActorCritic.policy)
    actions = rng.integers(0, 2, 32).astype(np.int32)
    zeros = jnp.zeros(32)
    data = ac.UpdateData(jnp.asarray(obs), jnp.asarray(actions), make_dist(logits, True).log_prob(actions), zeros,
                         jnp.asarray(rng.normal(size=32), jnp.float32), zeros)
    flat = ravel_pytree(actor)[0]
    steps = {}
    for fraction in (0.5, 1.0):
        cfg = dataclasses.replace(base, fvp_fraction=fraction)
        new, _, _ = jax.jit(lambda a: trpo.policy_update(cfg, learner, a, critic, (), data))(actor)
        steps[fraction] = np.asarray(ravel_pytree(new)[0] - flat, np.float64)
    return base, learner, actor, critic, data, steps


def tnpg_step_numpy(fisher, grad, damping, max_kl):
    a = fisher + damping * np.eye(len(grad))
    s = np.linalg.solve(a, grad)
    return np.sqrt(2.0 * max_kl / (s @ a @ s)) * s


def test_fvp_fraction_uses_the_fisher_matrix_of_every_kth_row(fvp_problem):
    cfg, learner, actor, critic, data, steps = fvp_problem
    flat, unravel = ravel_pytree(actor)
    dist_at = lambda f, o: make_dist(
        learner.network.apply(join_params(unravel(f), critic), o, method=ActorCritic.policy), True)

    def fisher(obs):  # the explicit Hessian of the mean KL from the current policy over ``obs``
        old = jax.tree.map(jax.lax.stop_gradient, dist_at(flat, obs))
        return np.asarray(jax.hessian(lambda f: old.kl(dist_at(f, obs)).mean())(flat), np.float64)

    adv = jnp.asarray(np_normalize(data.advantages), jnp.float32)
    grad = np.asarray(jax.grad(lambda f: jnp.mean(dist_at(f, data.obs).log_prob(data.actions) * adv))(flat), np.float64)
    half = tnpg_step_numpy(fisher(data.obs[::2]), grad, cfg.cg_damping, cfg.max_kl)
    full = tnpg_step_numpy(fisher(data.obs), grad, cfg.cg_damping, cfg.max_kl)
    scale = np.abs(half).max()
    assert np.abs(half - full).max() > 0.1 * scale  # the subsample's Fisher matrix gives another step

    np.testing.assert_allclose(steps[0.5], half, rtol=1e-3, atol=2e-3 * scale)
    np.testing.assert_allclose(steps[1.0], full, rtol=1e-3, atol=2e-3 * np.abs(full).max())


# ----------------------------------------------------------------------------- vpg


@pytest.fixture(scope="module")
def vpg_batch(cartpole):
    """One rollout of an untrained tiny policy on CartPole (JAX backend), prepared (GAE)."""
    cfg = vpg.Config(num_envs=4, num_steps=32, hidden=(8,), policy_lr=3e-3)
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(vpg.ALGO, cfg, cartpole,
                                                                   jax.random.PRNGKey(0)[None]))
    spec = rollout_spec(cfg, cartpole, vpg.ALGO.act_words(cfg, cartpole))
    carry, batch, _ = jax.jit(lambda r: jax_rollout(spec, cartpole, vpg.ALGO.act(cfg, cartpole, False), r.algo.params,
                                                    r.env, jax.random.PRNGKey(1), start=True))(runner)
    learner = trpo.make_learner(cfg, cartpole)
    data = ac.prepare(cfg, learner, runner.algo.params, Experience(batch, carry.obs_stats))
    return cfg, learner, runner.algo, data


def test_vpg_step_is_one_adam_step_up_the_gradient(cartpole):
    cfg = vpg.Config(policy_lr=0.01)
    learner = trpo.make_learner(cfg, cartpole)
    flat = jnp.asarray([1.0, -2.0, 0.5, 0.0])
    grad = jnp.asarray([3.0, -0.2, 1e-4, -50.0])
    opt_state = learner.optimizer[0].init(flat)
    new, opt_state, backtracks = trpo.vpg_step(cfg, learner, flat, grad, opt_state, None, None, None)
    g = np.asarray(grad, np.float64)  # Adam's first update: lr * g / (|g| + eps), eps = 1e-8
    np.testing.assert_allclose(np.asarray(new - flat), 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new - flat), 0.01 * np.sign(g), rtol=1e-3)
    assert int(backtracks) == 0


def test_vpg_policy_update_takes_adams_first_step_up_the_policy_gradient(cartpole, vpg_batch):
    cfg, learner, train, data = vpg_batch
    actor, critic = split_params(train.params)
    opt_state = trpo.init_opt_state(cfg, cartpole, train.params)[0]  # Adam's zero moments and count
    new, _, metrics = jax.jit(lambda a, s: trpo.policy_update(cfg, learner, a, critic, s, data))(actor, opt_state)
    flat, unravel = ravel_pytree(actor)
    step = np.asarray(ravel_pytree(new)[0] - flat, np.float64)

    # the policy gradient, mean(grad log pi(a|s) A) with normalised advantages (REINFORCE with a baseline)
    adv = jnp.asarray(np_normalize(data.advantages), jnp.float32)
    log_pi = lambda f: make_dist(learner.network.apply(join_params(unravel(f), critic), data.obs,
                                                       method=ActorCritic.policy), True).log_prob(data.actions)
    g = np.asarray(jax.grad(lambda f: jnp.mean(log_pi(f) * adv))(flat), np.float64)
    clear = np.abs(g) > 1e-6  # (rounding cannot flip these signs)
    assert clear.mean() > 0.9

    # Adam's first update: lr * m_hat / (sqrt(v_hat) + eps) = lr * g / (|g| + eps), i.e. lr * sign(g)
    np.testing.assert_allclose(step[clear], (cfg.policy_lr * g / (np.abs(g) + 1e-8))[clear], rtol=1e-3)
    np.testing.assert_allclose(step[clear], cfg.policy_lr * np.sign(g[clear]), rtol=1e-2)
    assert np.abs(step).max() <= cfg.policy_lr * (1 + 1e-5)
    # it improves the surrogate, by about its first-order gain lr * |g|_1
    gain = float(metrics["surrogate_gain"])
    assert gain > 0
    assert gain == pytest.approx(g @ step, rel=0.2)
