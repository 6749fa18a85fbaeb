import surrogate  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate.core.advantages import discounted_returns, gae


def test_gae_matches_hand_computed_values_with_termination_and_truncation():
    # t:            0    1(term)  2    3(trunc)  4
    r = jnp.array([1.0, 2.0, 0.5, 1.0, -1.0])
    v = jnp.array([0.5, 1.0, 0.2, 0.3, 0.4])
    # V(s_{t+1}) of the state each step really reached; at t=3 the final (pre-reset) state's value 0.9
    nv = jnp.array([1.0, 7.0, 0.3, 0.9, 0.6])
    term = jnp.array([0, 1, 0, 0, 0], bool)
    done = jnp.array([0, 1, 0, 1, 0], bool)
    g, lam = 0.9, 0.8
    # deltas by hand: r + g * (1 - term) * nv - v
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    d1 = 2.0 + 0.0 - 1.0  # 1.0 (terminal: the 7.0 is ignored)
    d2 = 0.5 + 0.9 * 0.3 - 0.2  # 0.57
    d3 = 1.0 + 0.9 * 0.9 - 0.3  # 1.51 (truncated: bootstraps from the final state)
    d4 = -1.0 + 0.9 * 0.6 - 0.4  # -0.86 (end of batch: bootstraps)
    a4 = d4
    a3 = d3  # episode ended: no credit from t=4
    a2 = d2 + 0.72 * a3
    a1 = d1
    a0 = d0 + 0.72 * a1
    adv, targets = gae(r, v, nv, term, done, g, lam)
    np.testing.assert_allclose(adv, [a0, a1, a2, a3, a4], rtol=1e-6)
    np.testing.assert_allclose(targets, np.array([a0, a1, a2, a3, a4]) + np.asarray(v), rtol=1e-6)
    assert a2 == pytest.approx(0.57 + 0.72 * 1.51)


def test_gae_lambda_one_gives_discounted_returns_and_lambda_zero_gives_td_error():
    rng = np.random.default_rng(0)
    T, N = 12, 3
    r, v, nv = (jnp.asarray(rng.normal(size=(T, N)), jnp.float32) for _ in range(3))
    done = jnp.asarray(rng.random((T, N)) < 0.2)
    term = done & jnp.asarray(rng.random((T, N)) < 0.5)
    # inside an episode the next state's value is the next row's value
    nv = jnp.where(done, nv, jnp.concatenate([v[1:], nv[-1:]]))
    adv1, _ = gae(r, v, nv, term, done, 0.95, 1.0)
    ret = discounted_returns(r, term, done, nv, 0.95)
    np.testing.assert_allclose(adv1 + v, ret, rtol=1e-5, atol=1e-5)
    adv0, _ = gae(r, v, nv, term, done, 0.95, 0.0)
    np.testing.assert_allclose(adv0, r + 0.95 * (1 - term) * nv - v, rtol=1e-5, atol=1e-6)


def test_epoch_permutations_are_uniform_random_permutations():
    from surrogate.core.minibatches import epoch_permutations

    perms = np.asarray(jax.jit(epoch_permutations, static_argnums=(1, 2))(jax.random.PRNGKey(0), 3000, 5))
    assert (np.sort(perms, axis=1) == np.arange(5)).all()  # every row a permutation
    # all 120 orders about equally often (chi-square with 119 dof: mean 119, sd ~15.4)
    codes = (perms * 5 ** np.arange(5)).sum(1)
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 120
    chi2 = ((counts - 25.0) ** 2 / 25.0).sum()
    assert chi2 < 119 + 5 * 15.4
    other = np.asarray(epoch_permutations(jax.random.PRNGKey(1), 2, 1000))
    assert not (other[0] == other[1]).all()
    # 300 rows: 9 index bits, 23 random bits per key, so two sorting rounds; every row still a permutation
    # and every element's mean position 149.5 (sd of a mean over 2000 epochs ~1.9)
    perms = np.asarray(epoch_permutations(jax.random.PRNGKey(2), 2000, 300))
    assert (np.sort(perms, axis=1) == np.arange(300)).all()
    mean_position = np.argsort(perms, axis=1).mean(0)
    assert np.abs(mean_position - 149.5).max() < 5 * 1.94
    assert abs(np.corrcoef(perms[:, 0], perms[:, 1])[0, 1]) < 0.1  # neighbours independent
