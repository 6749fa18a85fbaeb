"""Recurrent actor-critic: unroll == steps, carry resets exactly at episode starts, gradients through time."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate.core.distributions import make_dist
from surrogate.core.recurrent import RecurrentActorCritic

T, N, D = 8, 2, 3


def _setup(discrete=True):
    net = RecurrentActorCritic(action_dim=2, discrete=discrete, hidden=(16,), gru_size=8)
    params = net.init_params(jax.random.key(0), (D,))
    k1, k2 = jax.random.split(jax.random.key(1))
    obs = jax.random.normal(k1, (T, N, D))
    carry0 = jax.random.normal(k2, (N, 8))  # a carry left by an earlier rollout
    return net, params, obs, carry0


def _flat(dist, values):
    return jnp.concatenate([*(d.reshape(*values.shape, -1) for d in jax.tree.leaves(dist)), values[..., None]], -1)


@pytest.mark.parametrize("discrete", [True, False])
def test_unroll_equals_step_by_step(discrete):
    net, params, obs, carry0 = _setup(discrete)
    resets = jnp.zeros((T, N), bool).at[4, 1].set(True)
    dist, values, final = jax.jit(net.unroll)(params, obs, carry0, resets)
    step = jax.jit(net.step)
    carry = carry0
    for t in range(T):
        d, v, carry = step(params, obs[t], carry, resets[t])
        np.testing.assert_allclose(_flat(d, v), _flat(jax.tree.map(lambda x: x[t], dist), values[t]), rtol=0, atol=0)
    np.testing.assert_allclose(carry, final, rtol=0, atol=0)
    assert values.shape == (T, N) and final.shape == (N, 8)
    pi = make_dist(dist, discrete)
    actions = pi.sample(jax.random.key(2))
    assert pi.log_prob(actions).shape == (T, N)
    if not discrete:
        assert dist[0].shape == dist[1].shape == (T, N, 2)


def test_carry_resets_at_episode_starts_and_nowhere_else():
    net, params, obs, carry0 = _setup()
    resets = jnp.zeros((T, N), bool).at[3, 0].set(True)
    out = _flat(*net.unroll(params, obs, carry0, resets)[:2])
    fresh = _flat(*net.unroll(params, obs[3:], net.initial_carry(N), jnp.zeros((T - 3, N), bool))[:2])
    np.testing.assert_allclose(out[3:, 0], fresh[:, 0], rtol=0, atol=0)  # env 0 forgot everything before t=3
    assert np.abs(out[3:, 1] - fresh[:, 1]).max(-1).min() > 1e-3  # env 1 still remembers its past
    # without the reset env 0 would have differed too, and a reset at t=0 drops carry0
    no_reset = _flat(*net.unroll(params, obs, carry0, jnp.zeros((T, N), bool))[:2])
    assert np.abs(no_reset[3:, 0] - fresh[:, 0]).max(-1).min() > 1e-3
    start = _flat(*net.unroll(params, obs, carry0, jnp.ones((T, N), bool).at[1:].set(False))[:2])
    np.testing.assert_allclose(start, _flat(*net.unroll(params, obs, net.initial_carry(N), resets * 0 > 0)[:2]), rtol=0, atol=0)


def test_gradients_flow_through_time_but_not_across_resets():
    net, params, obs, carry0 = _setup()

    def grad_wrt_first_obs(resets):
        loss = lambda o: net.unroll(params, o, carry0, resets)[1][-1].sum()  # value at t = T-1
        return jax.grad(loss)(obs)[0]

    assert np.abs(grad_wrt_first_obs(jnp.zeros((T, N), bool))).min() > 0
    g = grad_wrt_first_obs(jnp.zeros((T, N), bool).at[5, 0].set(True))
    assert np.all(g[0] == 0) and np.abs(g[1]).min() > 0  # env 0's reset at t=5 cuts the path; env 1 unaffected
    # and the carry itself gets gradient only where no reset intervenes
    gc = jax.grad(lambda c: net.unroll(params, obs, c, jnp.zeros((T, N), bool).at[2, 1].set(True))[1][-1].sum())(carry0)
    assert np.abs(gc[0]).sum() > 0 and np.all(gc[1] == 0)


def test_initial_carry_and_params():
    net = RecurrentActorCritic(action_dim=3, discrete=False, log_std_init=-0.5)
    params = net.init_params(jax.random.key(0), (4,))
    assert net.initial_carry(5).shape == (5, 64) and not net.initial_carry(5).any()
    np.testing.assert_array_equal(params["params"]["log_std"], np.full(3, -0.5, np.float32))
    (mean, log_std), value, carry = net.step(params, jnp.ones((5, 4)), net.initial_carry(5), jnp.zeros(5, bool))
    assert mean.shape == log_std.shape == (5, 3) and value.shape == (5,) and carry.shape == (5, 64)
    assert np.abs(np.asarray(mean)).max() < 0.1  # policy head initialised with gain 0.01
