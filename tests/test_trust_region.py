"""Conjugate gradient, Fisher-vector products, the natural step and the line search (core/trust_region.py),
and the TRPO-family policy and value steps built on them, against explicit matrices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from surrogate.algos import trpo
from surrogate.algos import actor_critic as ac
from surrogate.runtime import jax_driver
from surrogate.runtime.rollout import Experience, jax_rollout, rollout_spec
from surrogate.core.distributions import make_dist
from surrogate.core.networks import ActorCritic, join_params, split_params
from surrogate.core.trust_region import (conjugate_gradient, fisher_vector_product, hessian_vector_product, line_search,
                                         natural_step)


def test_conjugate_gradient_solves_a_random_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(30, 30))
    a = m @ m.T / 30 + 0.5 * np.eye(30)
    b = rng.normal(size=30)
    x = conjugate_gradient(lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.asarray(b, jnp.float32), iters=60)
    np.testing.assert_allclose(a @ np.asarray(x, np.float64), b, atol=1e-3)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-3, atol=1e-3)
    # stops cleanly at convergence (no NaN from 0/0 when more iterations than needed)
    x2 = conjugate_gradient(lambda v: 2.0 * v, jnp.ones(5), iters=50)
    np.testing.assert_allclose(np.asarray(x2), 0.5 * np.ones(5), rtol=1e-6)


def small_policy(discrete: bool, seed: int = 0):
    """A 3-input, 6-unit actor (3 actions or a 2-d Gaussian), its flat parameters and a batch of states."""
    net = ActorCritic(3 if discrete else 2, discrete, "mlp", (6,), "tanh", 0.0)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, 3)))
    actor, critic = split_params(params)
    flat, unravel = ravel_pytree(actor)
    obs = jax.random.normal(jax.random.PRNGKey(seed + 1), (40, 3))
    outputs = lambda f: net.apply(join_params(unravel(f), critic), obs, method=ActorCritic.policy)
    return flat, lambda f: make_dist(outputs(f), discrete), outputs


@pytest.mark.parametrize("discrete", [True, False], ids=["categorical", "gaussian"])
def test_fisher_vector_product_equals_explicit_hessian_of_kl(discrete):
    flat, dist_at, outputs = small_policy(discrete)
    old = jax.tree.map(jax.lax.stop_gradient, dist_at(flat))
    mean_kl = lambda f: old.kl(dist_at(f)).mean()
    fisher = np.asarray(jax.hessian(mean_kl)(flat))
    v = jax.random.normal(jax.random.PRNGKey(5), flat.shape)
    expected = fisher @ np.asarray(v) + 0.1 * np.asarray(v)
    through_network = hessian_vector_product(mean_kl, flat, damping=0.1)  # forward-over-reverse of the mean KL
    np.testing.assert_allclose(np.asarray(through_network(v)), expected, rtol=1e-4, atol=1e-6)
    # what TRPO uses: J^T (forward-over-reverse Hessian of the KL in the distribution parameters) J
    gauss_newton = fisher_vector_product(outputs, flat, lambda z: old.kl(make_dist(z, discrete)).mean(), damping=0.1)
    np.testing.assert_allclose(np.asarray(gauss_newton(v)), expected, rtol=1e-4, atol=1e-6)
    # it is the Fisher information: symmetric positive semi-definite, and non-trivial
    assert np.allclose(fisher, fisher.T, atol=1e-6) and np.linalg.eigvalsh(fisher).min() > -1e-6
    assert np.abs(fisher).max() > 1e-3


@pytest.mark.parametrize("discrete", [True, False], ids=["categorical", "gaussian"])
def test_natural_step_has_the_natural_gradient_direction_and_kl_radius(discrete):
    flat, dist_at, outputs = small_policy(discrete, seed=3)
    old = jax.tree.map(jax.lax.stop_gradient, dist_at(flat))
    mean_kl = lambda f: old.kl(dist_at(f)).mean()
    g = jax.random.normal(jax.random.PRNGKey(9), flat.shape)
    damping, delta = 0.01, 0.01
    fvp = fisher_vector_product(outputs, flat, lambda z: old.kl(make_dist(z, discrete)).mean(), damping)
    step = natural_step(g, fvp, delta, cg_iters=4 * flat.size).step
    f_damped = np.asarray(jax.hessian(mean_kl)(flat), np.float64) + damping * np.eye(flat.size)
    direction = np.linalg.solve(f_damped, np.asarray(g, np.float64))
    cos = direction @ np.asarray(step) / (np.linalg.norm(direction) * np.linalg.norm(step))
    assert cos > 0.999, cos
    np.testing.assert_allclose(0.5 * np.asarray(step) @ f_damped @ np.asarray(step), delta, rtol=1e-3)


def test_line_search_accepts_the_first_fraction_within_the_constraint():
    # objective improves for any positive step; "kl" = x^2 so only |x| <= 0.1 is allowed
    obj_kl = lambda x: (x.sum(), (x ** 2).sum())
    res = line_search(obj_kl, jnp.zeros(1), jnp.ones(1), max_kl=0.01, backtrack=0.5, max_steps=10)
    # fractions 1, .5, .25, .125, .0625: the first with kl <= .01 is .0625 (kl .0039), after 4 shrinkings
    assert int(res.backtracks) == 4 and float(res.x[0]) == pytest.approx(0.0625)
    assert float(res.gain) == pytest.approx(0.0625) and float(res.kl) == pytest.approx(0.0625 ** 2)
    # no fraction improves the objective: the old parameters are kept
    worse = line_search(lambda x: (-x.sum(), (x ** 2).sum()), jnp.zeros(1), jnp.ones(1), 0.01, 0.5, 10)
    assert float(worse.x[0]) == 0.0 and int(worse.backtracks) == 10 and float(worse.gain) == 0.0


@pytest.fixture(scope="module")
def cartpole_batch():
    """One rollout of an untrained policy on CartPole (JAX backend) and what the update needs."""
    from surrogate import envs

    env = envs.make("CartPole-v1")
    cfg = trpo.Config(num_envs=4, num_steps=64)
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(trpo.ALGO, cfg, env, jax.random.PRNGKey(0)[None]))
    spec = rollout_spec(cfg, env, trpo.ALGO.act_words(cfg, env))
    carry, batch, _ = jax.jit(lambda r: jax_rollout(spec, env, trpo.ALGO.act(cfg, env, False), r.algo.params, r.env,
                                                    jax.random.PRNGKey(1), start=True))(runner)
    return env, cfg, runner.algo, Experience(batch, carry.obs_stats)


def _kl_numpy(logits_old, logits_new):
    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))
    lp, lq = log_softmax(np.asarray(logits_old, np.float64)), log_softmax(np.asarray(logits_new, np.float64))
    return float((np.exp(lp) * (lp - lq)).sum(-1).mean())


@pytest.mark.parametrize("method", ["trpo", "tnpg", "vpg"])
def test_one_update_respects_the_trust_region(cartpole_batch, method):
    env, cfg, train0, experience = cartpole_batch
    cfg = trpo.Config(num_envs=4, num_steps=64, method=method, max_kl=0.01)
    learner = trpo.make_learner(cfg, env)
    start = train0._replace(opt_state=trpo.init_opt_state(cfg, env, train0.params))  # vpg: Adam
    train, m = jax.jit(lambda t: trpo.learn(cfg, env, t, experience, jax.random.PRNGKey(2)))(start)
    gain, kl, backtracks = m["surrogate_gain"], m["kl"], m["backtracks"]
    obs = experience.batch.obs.reshape(-1, 4)
    policy = lambda p: learner.network.apply(p, obs, method=ActorCritic.policy)
    measured = _kl_numpy(policy(train0.params), policy(train.params))
    assert measured == pytest.approx(float(kl), rel=1e-3, abs=1e-7)
    assert measured > 1e-4  # it moved
    if method == "trpo":
        assert measured <= cfg.max_kl and float(gain) > 0
    elif method == "tnpg":  # no line search: within 1.5 delta of the quadratic model's radius
        assert measured <= 1.5 * cfg.max_kl and float(gain) > 0 and float(backtracks) == 0


def test_value_trust_region_step_meets_its_constraint_and_reduces_the_loss(cartpole_batch):
    env, _, train0, experience = cartpole_batch
    cfg = trpo.Config(num_envs=4, num_steps=64, vf_fit="trust_region", vf_max_kl=0.01)
    learner = trpo.make_learner(cfg, env)
    data = ac.prepare(cfg, learner, train0.params, experience)
    actor, critic = split_params(train0.params)
    values = lambda c, obs: learner.network.apply(join_params(actor, c), obs, method=ActorCritic.value)
    new = jax.jit(lambda c: trpo.value_trust_region_step(cfg, values, c, data))(critic)
    v_old, v_new = np.asarray(data.old_values), np.asarray(values(new, data.obs))
    targets = np.asarray(data.targets)
    sigma2 = np.mean((v_old - targets) ** 2)
    constraint = np.mean((v_new - v_old) ** 2) / (2 * sigma2)
    assert constraint == pytest.approx(cfg.vf_max_kl, rel=0.2)  # on the boundary of the quadratic model
    assert np.mean((v_new - targets) ** 2) < np.mean((v_old - targets) ** 2)
