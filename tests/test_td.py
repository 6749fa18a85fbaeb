import jax
import jax.numpy as jnp
import numpy as np

from surrogate.core.td import huber_loss, n_step_targets, polyak, q_targets

# a normal step, a termination, a truncation (time limit: not terminal, bootstraps)
REWARDS = jnp.array([1.0, 2.0, 3.0])
TERMS = jnp.array([0.0, 1.0, 0.0])
NEXT_Q_TARGET = jnp.array([[1.0, 5.0], [10.0, 20.0], [4.0, 2.0]])
NEXT_Q_ONLINE = jnp.array([[3.0, 0.0], [0.0, 1.0], [0.0, 7.0]])


def test_q_targets_hand_values():
    y = q_targets(REWARDS, TERMS, NEXT_Q_TARGET, gamma=0.9)
    np.testing.assert_allclose(y, [1 + 0.9 * 5, 2.0, 3 + 0.9 * 4], rtol=1e-6)


def test_double_q_targets_hand_values():
    # online argmax picks actions 0, 1, 1; the target network evaluates them: 1, 20, 2
    y = q_targets(REWARDS, TERMS, NEXT_Q_TARGET, NEXT_Q_ONLINE, gamma=0.9)
    np.testing.assert_allclose(y, [1 + 0.9 * 1, 2.0, 3 + 0.9 * 2], rtol=1e-6)
    y = jax.jit(q_targets, static_argnames="gamma")(REWARDS, TERMS.astype(bool), NEXT_Q_TARGET, NEXT_Q_ONLINE,
                                                    gamma=0.9)
    np.testing.assert_allclose(y, [1.9, 2.0, 4.8], rtol=1e-6)


def _n_step_reference(r, term, done, v, gamma, n):
    T = r.shape[0]
    out = np.zeros_like(r)
    for t in range(T):
        for j in range(r.shape[1]):
            g, disc = 0.0, 1.0
            for k in range(n):
                i = t + k
                g += disc * r[i, j]
                disc *= gamma
                if term[i, j]:
                    break
                if done[i, j] or k == n - 1 or i == T - 1:
                    g += disc * v[i, j]
                    break
            out[t, j] = g
    return out


def test_n_step_targets_match_loop():
    rng = np.random.default_rng(0)
    T, N = 23, 5
    r = rng.normal(size=(T, N)).astype(np.float32)
    v = rng.normal(size=(T, N)).astype(np.float32)
    term = rng.random((T, N)) < 0.12
    trunc = (rng.random((T, N)) < 0.12) & ~term
    done = term | trunc
    assert term.any() and trunc.any()
    for n in (1, 3, 5):
        got = jax.jit(n_step_targets, static_argnums=(4, 5))(r, term, done, v, 0.9, n)
        np.testing.assert_allclose(got, _n_step_reference(r, term, done, v, 0.9, n), rtol=1e-5, atol=1e-5)
    # n = 1 is the one-step target
    one = n_step_targets(r, term, done, v, 0.9, 1)
    np.testing.assert_allclose(one, r + 0.9 * (1 - term) * v, rtol=1e-5, atol=1e-6)


def test_huber_value_and_gradient():
    x = jnp.array([-3.0, -1.0, -0.4, 0.0, 0.5, 2.0])
    for delta in (1.0, 0.7):
        expect = np.where(np.abs(x) <= delta, 0.5 * x**2, delta * (np.abs(x) - 0.5 * delta))
        np.testing.assert_allclose(huber_loss(x, delta), expect, rtol=1e-6)
        grad = jax.vmap(jax.grad(lambda z: huber_loss(z, delta)))(x)
        np.testing.assert_allclose(grad, np.clip(x, -delta, delta), rtol=1e-6)


def test_polyak_endpoints_and_midpoint():
    target = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(4.0)}
    online = {"w": jnp.array([3.0, -2.0]), "b": jnp.array(0.0)}
    hard = polyak(target, online, 0.0)
    keep = polyak(target, online, 1.0)
    mid = polyak(target, online, 0.75)
    for k in target:
        np.testing.assert_allclose(hard[k], online[k])
        np.testing.assert_allclose(keep[k], target[k])
    np.testing.assert_allclose(mid["w"], [1.5, 1.0])
    np.testing.assert_allclose(mid["b"], 3.0)


def test_soft_value_boltzmann_policy_and_soft_targets_hand_values():
    from surrogate.core.td import boltzmann_log_probs, soft_q_targets, soft_value

    q = jnp.array([[1.0, 2.0], [0.0, -3.0]])
    tau = 0.5
    hand = tau * np.log(0.5 * np.exp(np.array([1.0, 0.0]) / tau) + 0.5 * np.exp(np.array([2.0, -3.0]) / tau))
    np.testing.assert_allclose(soft_value(q, tau), hand, rtol=1e-6)
    np.testing.assert_allclose(soft_value(q, 1e-3), q.max(-1), atol=1e-2)  # tau -> 0: the hard max
    # a non-uniform prior: V = tau log sum_a prior(a) exp(Q / tau)
    log_prior = jnp.log(jnp.array([0.9, 0.1]))
    np.testing.assert_allclose(soft_value(q, tau, log_prior),
                               tau * np.log(0.9 * np.exp(q[:, 0] / tau) + 0.1 * np.exp(q[:, 1] / tau)), rtol=1e-6)
    # the paper's parametrization: Q = V + tau * log(pi / prior), exactly
    for lp in (None, log_prior):
        prior = -np.log(2) if lp is None else lp
        np.testing.assert_allclose(soft_value(q, tau, lp)[:, None] + tau * (boltzmann_log_probs(q, tau, lp) - prior),
                                   q, atol=1e-6)
    y = soft_q_targets(jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0]), q, gamma=0.9, tau=tau)
    np.testing.assert_allclose(y, [1.0 + 0.9 * hand[0], 2.0], rtol=1e-6)
