"""rllab's linear feature baseline, ERWR and REPS (Duan et al. 2016, issue 27) against hand computations and
NumPy: the features and the ridge fit, the step index the rollouts record, TRPO's advantages with
``baseline="linear"``, REPS's dual gradient (finite differences, float64) and KL bound, RWR's weighted
maximum-likelihood step (weighted least squares for a linear-Gaussian policy), bad configs."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import actor_critic as ac
from surrogate.algos import linear_baseline, reps, rwr, trpo
from surrogate.core import baselines
from surrogate.core import reps as core_reps
from surrogate.core.lbfgs import lbfgs_minimize, positive_advantages, weighted_max_likelihood
from surrogate.errors import ConfigError
from surrogate.runtime import jax_driver
from surrogate.runtime.rollout import Batch, init_carry, host_rollout, jax_rollout, rollout_spec

# ----------------------------------------------------------------------------- the linear baseline


def test_features_match_a_hand_computation():
    obs = np.array([[0.5, -12.0], [3.0, 20.0]], np.float32)
    steps = np.array([0, 150])
    expected = [[0.5, -10.0, 0.25, 100.0, 0.0, 0.0, 0.0, 1.0],
                [3.0, 10.0, 9.0, 100.0, 1.5, 2.25, 3.375, 1.0]]
    np.testing.assert_allclose(baselines.linear_features(obs, steps), expected, rtol=1e-6)
    assert baselines.num_features(2) == 8


def test_fit_equals_numpy_ridge_regression():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(40, 5, 3)).astype(np.float32) * 4
    steps = rng.integers(0, 300, (40, 5))
    x = np.asarray(baselines.linear_features(obs, steps), np.float64).reshape(200, -1)
    y = x @ rng.normal(size=x.shape[1]) + rng.normal(size=200)
    w = jax.jit(baselines.fit_linear)(x.astype(np.float32), y.astype(np.float32))
    ref = np.linalg.solve(x.T @ x + 1e-5 * np.eye(x.shape[1]), x.T @ y)  # rllab's normal equations
    np.testing.assert_allclose(x @ np.asarray(w, np.float64), x @ ref, atol=2e-3 * np.abs(y).max())
    np.testing.assert_allclose(baselines.predict_linear(w, x.astype(np.float32)), x @ w, rtol=1e-5)


def test_fit_raises_the_ridge_tenfold_until_the_solution_is_finite(monkeypatch):
    seen = []

    def ridge(features, targets, reg):  # breaks down below 1e-3 (rllab's loop retries at 1e-4, 1e-3)
        seen.append(reg)
        w = jnp.full(features.shape[-1], reg)
        return jnp.where(reg < 0.99e-3, jnp.nan, w)

    monkeypatch.setattr(baselines, "ridge", ridge)
    w = baselines.fit_linear(jnp.ones((4, 3)), jnp.ones(4), 1e-5)
    np.testing.assert_allclose(w, 1e-3, rtol=1e-5)


# ----------------------------------------------------------------------------- the step index of the rollouts


def check_steps(steps, dones, start):
    """``steps [T, N]`` counts up by one within an episode and restarts at 0 after every episode end."""
    expected = np.empty_like(steps)
    cur = np.asarray(start)
    for t in range(steps.shape[0]):
        expected[t] = cur
        cur = np.where(dones[t], 0, cur + 1)
    np.testing.assert_array_equal(steps, expected)
    assert dones.sum() >= 3 and steps.dtype == np.int32
    return cur


def random_act(params, obs, carry, bits):
    return (bits[:, 0] % 2).astype(jnp.int32), carry


def test_jax_rollout_records_the_step_index_within_each_episode():
    env, config = envs.make("CartPole-v1"), trpo.Config(num_envs=3, num_steps=40)
    spec = rollout_spec(config, env, act_words=1)
    runner = jax_driver.initial_state(trpo.ALGO, config, env, jax.random.split(jax.random.PRNGKey(0), 1))
    carry = jax.tree.map(lambda x: x[0], runner.env)
    roll = jax.jit(lambda c, k, s: jax_rollout(spec, env, random_act, None, c, k, start=s))
    start = np.zeros(3, np.int32)
    for i in range(2):  # the second rollout continues the first one's episodes
        carry, batch, _ = roll(carry, jax.random.PRNGKey(i), i == 0)
        start = check_steps(np.asarray(batch.episode_steps), np.asarray(batch.dones), start)


def test_host_rollout_records_the_step_index_within_each_episode():
    env, config = envs.make("gym:CartPole-v1"), trpo.Config(env="gym:CartPole-v1", num_envs=3, num_steps=40)
    venv = env.vector(3, 0)
    rng = np.random.default_rng(0)
    try:
        obs, _ = venv.reset(seed=0)
        carry = init_carry(None, obs.astype(np.float32), np)
        start = np.zeros(3, np.int32)
        for _ in range(2):
            carry, batch, _ = host_rollout(rollout_spec(config, env), venv,
                                           lambda o, c: (rng.integers(0, 2, 3), c), carry)
            start = check_steps(batch.episode_steps, batch.dones, start)
    finally:
        venv.close()


# ----------------------------------------------------------------------------- advantages with the linear baseline


def discount_cumsum(x, discount):
    out, acc = np.zeros_like(x), 0.0
    for t in reversed(range(len(x))):
        acc = x[t] + discount * acc
        out[t] = acc
    return out


def test_advantages_and_returns_match_rllab_path_by_path():
    """rllab's ``process_samples`` on each path (baselines with 0 appended after a terminal, here the
    prediction at the next observation where the path is cut: a time limit with bootstrap_truncation, or the
    rollout's end), against the batched ``linear_baseline.advantages_and_returns``."""
    T, N, gamma, lam = 6, 3, 0.9, 0.7
    rng = np.random.default_rng(1)
    phi, next_phi = rng.normal(size=(2, T, N, 5))
    coeffs = rng.normal(size=5)
    rewards = rng.normal(size=(T, N))
    terminations, dones = np.zeros((T, N), bool), np.zeros((T, N), bool)
    terminations[2, 0] = dones[2, 0] = True  # env 0: terminal at t = 2
    dones[3, 1] = True  # env 1: time limit at t = 3 (env 2: one path, cut by the rollout)
    within = ~dones[:-1, :, None]  # next_phi[t] is phi[t + 1] inside an episode (the final state's at its end)
    next_phi[:-1] = np.where(within, phi[1:], next_phi[:-1])
    for bootstrap_truncation in (True, False):
        config = trpo.Config(gamma=gamma, gae_lambda=lam, bootstrap_truncation=bootstrap_truncation)
        batch = Batch(None, None, rewards, terminations, dones, None)
        values, adv, ret = linear_baseline.advantages_and_returns(config, coeffs, phi, next_phi, batch)
        for n in range(N):
            ends = [t + 1 for t in range(T) if dones[t, n]] + ([T] if not dones[T - 1, n] else [])
            start = 0
            for end in ends:
                b = phi[start:end, n] @ coeffs
                terminal = terminations[end - 1, n] or (dones[end - 1, n] and not bootstrap_truncation)
                last = 0.0 if terminal else next_phi[end - 1, n] @ coeffs
                path_b = np.append(b, last)
                deltas = rewards[start:end, n] + gamma * path_b[1:] - path_b[:-1]
                np.testing.assert_allclose(adv[start:end, n], discount_cumsum(deltas, gamma * lam), rtol=1e-5)
                r = rewards[start:end, n].copy()
                r[-1] += gamma * last
                np.testing.assert_allclose(ret[start:end, n], discount_cumsum(r, gamma), rtol=1e-5)
                np.testing.assert_allclose(values[start:end, n], b, rtol=1e-5)
                start = end


@pytest.fixture(scope="module")
def trpo_linear():
    """TRPO with the linear baseline on CartPole-v1, one seed, 30 iterations of 8 x 128 steps."""
    config = dataclasses.replace(trpo.PRESETS["cartpole"], baseline="linear", gae_lambda=1.0, total_steps=30 * 1024)
    env = envs.make(config.env)
    return config, env, trpo.ALGO.train(config, env, jax.random.PRNGKey(0), seeds=1)


def test_trpo_with_the_linear_baseline_learns_cartpole_and_leaves_the_value_network_alone(trpo_linear):
    config, env, result = trpo_linear
    h = result.history
    curve = h["episode_return_sum"][0] / np.maximum(h["episode_count"][0], 1)
    assert curve[-5:].mean() > 4 * curve[:3].mean(), curve  # random: ~22 per episode
    assert (h["kl"] <= config.max_kl * (1 + 1e-5)).all()
    params = jax.tree.map(lambda x: x[0], result.state.algo.params)
    initial = trpo.init(config, env, jax.random.split(jax.random.PRNGKey(0), 1)[0]).params
    critic, critic0 = ac.split_params(params)[1], ac.split_params(initial)[1]
    jax.tree.map(np.testing.assert_array_equal, critic, critic0)


# ----------------------------------------------------------------------------- REPS's dual


def dual_problem(n=300, f=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n) * 3 - 1, rng.normal(size=(n, f)) * 0.5, rng.uniform(size=f)


def test_reps_dual_gradient_equals_finite_differences_and_the_closed_form():
    with jax.enable_x64(True):
        rewards, feat_diff, v = map(jnp.asarray, dual_problem())
        eta, eps, l2 = jnp.float64(2.5), 0.3, 1e-2
        g = lambda e, v: core_reps.dual(e, v, rewards, feat_diff, eps, l2)
        d_eta, d_v = jax.grad(g, argnums=(0, 1))(eta, v)
        h = 1e-6
        fd_eta = (g(eta + h, v) - g(eta - h, v)) / (2 * h)
        fd_v = np.array([(g(eta, v.at[i].add(h)) - g(eta, v.at[i].add(-h))) / (2 * h) for i in range(v.shape[0])])
        np.testing.assert_allclose(d_eta, fd_eta, rtol=1e-7)
        np.testing.assert_allclose(d_v, fd_v, rtol=1e-6, atol=1e-9)
        closed = core_reps.dual_grad(eta, v, rewards, feat_diff, eps, l2)
        np.testing.assert_allclose(closed[0], d_eta, rtol=1e-10)
        np.testing.assert_allclose(closed[1], d_v, rtol=1e-10)
        assert g(eta, v).dtype == jnp.float64


def test_reps_weights_after_the_dual_keep_kl_within_epsilon():
    """Peters et al. 2010, eq. 5-7: at the dual's minimum in eta, KL(p || q) = epsilon for the reweighting
    p_i ~ exp(delta_i / eta) of the samples (q: uniform over them): the constraint holds and is active."""
    rewards, feat_diff, v = map(jnp.asarray, dual_problem())
    minimize = jax.jit(lambda eps: core_reps.minimize_dual(v, rewards, feat_diff, eps, 50, 1e-5))
    for epsilon in (0.01, 0.5):  # (the rllab grid's basic-task values of epsilon, and rllab's default)
        eta, v_new, value = minimize(epsilon)
        kl = core_reps.sample_kl(core_reps.normalized_weights(eta, v_new, rewards, feat_diff))
        np.testing.assert_allclose(kl, epsilon, rtol=1e-3)
        assert value < core_reps.dual(15.0, v, rewards, feat_diff, epsilon, 1e-5)
        w = core_reps.sample_weights(eta, v_new, rewards, feat_diff)
        assert w.max() == 1.0 and (w > 0).all()


def test_the_dual_stops_once_stalled_at_the_minimum_of_all_fifty_iterations():
    """A stalled line search clears the L-BFGS memory and a second stall in a row stops (scipy's rule):
    fewer evaluations of the dual, the same minimum to float32 precision."""
    rewards, feat_diff, v = map(jnp.asarray, dual_problem())
    h = lambda v: core_reps.dual(core_reps.optimal_eta(v, rewards, feat_diff, 0.05), v, rewards, feat_diff, 0.05, 1e-5)  # noqa: E731
    calls = {}

    def solve(name, **stop):
        def counted(v):
            jax.debug.callback(lambda: calls.__setitem__(name, calls.get(name, 0) + 1))
            return h(v)
        return jax.jit(lambda: lbfgs_minimize(counted, v, 50, **stop))()[1]

    full, stopped = solve("full"), solve("stopped", patience=2, reset_on_stall=True)
    np.testing.assert_allclose(stopped, full, rtol=1e-5)
    assert calls["stopped"] < calls["full"] / 2, calls


# ----------------------------------------------------------------------------- RWR's weighted maximum likelihood


def test_weighted_max_likelihood_of_a_linear_gaussian_policy_is_weighted_least_squares():
    rng = np.random.default_rng(0)
    B, D, A = 400, 3, 2
    s = rng.normal(size=(B, D))
    a = s @ rng.normal(size=(D, A)) + 0.3 * rng.normal(size=(B, A))
    w = positive_advantages(jnp.asarray(rng.normal(size=B)))

    def log_prob(p):
        mean = jnp.asarray(s, jnp.float32) @ p["W"] + p["b"]
        z = (jnp.asarray(a, jnp.float32) - mean) / jnp.exp(p["log_std"])
        return jnp.sum(-0.5 * z * z - p["log_std"] - 0.5 * jnp.log(2 * jnp.pi), -1)

    p0 = {"W": jnp.zeros((D, A)), "b": jnp.zeros(A), "log_std": jnp.zeros(A)}
    p, _ = jax.jit(lambda: weighted_max_likelihood(log_prob, p0, w, 50))()
    x, wn = np.concatenate([s, np.ones((B, 1))], 1), np.asarray(w, np.float64)
    coef = np.linalg.solve(x.T @ (wn[:, None] * x), x.T @ (wn[:, None] * a))  # weighted least squares
    std = np.sqrt((wn[:, None] * (a - x @ coef) ** 2).sum(0) / wn.sum())
    np.testing.assert_allclose(p["W"], coef[:D], atol=1e-4)
    np.testing.assert_allclose(p["b"], coef[D], atol=1e-4)
    np.testing.assert_allclose(jnp.exp(p["log_std"]), std, rtol=1e-4)


def test_lbfgs_under_vmap_solves_each_problem_as_alone_with_batched_integer_data():
    """Seeds vmapped over L-BFGS run one after another (``sequential_vmap``): the same answers as one
    problem at a time, also when the loss closes over batched integer data (discrete actions)."""
    def solve(x0, target, idx):
        return lbfgs_minimize(lambda x: jnp.sum((x[idx] - target) ** 2) + 0.1 * jnp.sum(x ** 2), x0, 20)

    rng = np.random.default_rng(1)
    x0, target = jnp.zeros((4, 3)), jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)
    idx = jnp.asarray(rng.integers(0, 3, size=(4, 2)), jnp.int32)
    xs, values = jax.jit(jax.vmap(solve))(x0, target, idx)
    for i in range(4):
        x, value = jax.jit(solve)(x0[i], target[i], idx[i])
        np.testing.assert_allclose(xs[i], x, atol=1e-6)
        np.testing.assert_allclose(values[i], value, atol=1e-6)
    assert float(values.max()) < float(jnp.sum(target ** 2))  # each one moved toward its own target


def test_positive_advantages_are_rllabs_centred_then_shifted():
    adv = np.array([3.0, -1.0, 0.5, 2.0])
    z = (adv - adv.mean()) / (adv.std() + 1e-8)
    np.testing.assert_allclose(positive_advantages(jnp.asarray(adv)), z - z.min() + 1e-8, rtol=1e-6)
    np.testing.assert_allclose(positive_advantages(jnp.asarray(adv), center=False), adv + 1.0 + 1e-8)


# ----------------------------------------------------------------------------- RWR and REPS run


def short_run(module, seeds=1):
    """3 iterations of 4 x 100 steps on Pendulum-v1 with a small network."""
    config = dataclasses.replace(module.PRESETS["pendulum"], num_envs=4, num_steps=100, total_steps=1200,
                                 hidden=(16,))
    return config, module.ALGO.train(config, envs.make(config.env), jax.random.PRNGKey(0), seeds=seeds)


def check_short_run(result):
    for name, metric in result.history.items():
        assert np.isfinite(metric).all(), name
    assert (result.history["loss_after"] <= result.history["loss_before"] + 1e-6).all()


def test_reps_runs_and_keeps_its_sample_kl_at_epsilon_on_pendulum():
    """(RWR's update is the same policy step, after the linear baseline's advantages that TRPO's test runs;
    its own runs are the slow tests.)"""
    config, result = short_run(reps)
    check_short_run(result)
    kl = result.history["sample_kl"]
    np.testing.assert_allclose(kl, config.epsilon, rtol=1e-3)


# ----------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize("make, match", [
    (lambda: trpo.Config(baseline="quadratic"), "baseline must be"),
    (lambda: rwr.Config(lbfgs_iters=0), "lbfgs_iters"),
    (lambda: rwr.Config(reg_coeff=0.0), "reg_coeff"),
    (lambda: rwr.Config(network="nature_cnn"), "MLP policy"),
    (lambda: reps.Config(epsilon=0.0), "epsilon"),
    (lambda: reps.Config(dual_l2=-1.0), "dual_l2"),
    (lambda: reps.Config(network="minatar_cnn"), "MLP policy"),
])
def test_bad_configs_raise_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make().validate()


def test_linear_baseline_needs_no_value_minibatches():
    trpo.Config(baseline="linear", num_envs=3, num_steps=50, vf_minibatch_size=64).validate()
    with pytest.raises(ConfigError, match="vf-minibatch-size"):
        trpo.Config(num_envs=3, num_steps=50, vf_minibatch_size=64).validate()


# ----------------------------------------------------------------------------- learning (slow)


def mean_return(result, last: int = 10):
    h = result.history
    curve = h["episode_return_sum"] / np.maximum(h["episode_count"], 1)
    return curve[:, -last:].mean(axis=1)


@pytest.mark.slow
def test_rwr_runs_two_seeds():
    check_short_run(short_run(rwr, seeds=2)[1])


@pytest.mark.slow
def test_rwr_learns_pendulum():
    config = rwr.PRESETS["pendulum"]
    result = rwr.ALGO.train(config, envs.make(config.env), jax.random.PRNGKey(0), seeds=2)
    assert mean_return(result).mean() > -700, mean_return(result)  # random: about -1200


@pytest.mark.slow
def test_trpo_with_the_linear_baseline_learns_pendulum():
    config = dataclasses.replace(trpo.PRESETS["pendulum"], baseline="linear", gae_lambda=1.0)
    result = trpo.ALGO.train(config, envs.make(config.env), jax.random.PRNGKey(0), seeds=2)
    assert mean_return(result).mean() > -500, mean_return(result)


def test_lbfgs_returns_the_lowest_point_visited():
    """On a quadratic behind a step (minimum 0 at x = 3, but +100 beyond x = 1), the line search walks into
    the step after a few iterations; the answer is the best point seen (f < 9, x just under 1), not the
    last one (f >= 100)."""
    f = lambda x: jnp.sum((x - 3.0) ** 2) + 100.0 * jnp.sum(x > 1.0)
    x, value = jax.jit(lambda x0: lbfgs_minimize(f, x0, 20))(jnp.zeros(2))
    assert float(value) == pytest.approx(float(f(x))) and float(value) < 9.0
    assert np.all(np.asarray(x) <= 1.0)
