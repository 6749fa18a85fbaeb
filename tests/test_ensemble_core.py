"""core.ensemble: UCB and voting against hand-computed values, bootstrap masks' inclusion frequency."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate.core.ensemble import (bootstrap_masks, bootstrap_masks_from_bits, ensemble_mean_std, masked_head_loss,
                                     scale_gradient, ucb_actions, ucb_scores, vote_actions, vote_counts)

# three heads, one state, two actions: action 0 is certain (1, 1, 1), action 1 uncertain (0, 0, 2.7)
Q = jnp.array([[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 2.7]]])


def test_ucb_hand_values_differ_from_the_mean_argmax():
    # mean (1, 0.9); population std (0, sqrt((0.9^2 + 0.9^2 + 1.8^2) / 3) = sqrt(1.62))
    mean, std = ensemble_mean_std(Q)
    np.testing.assert_allclose(mean, [[1.0, 0.9]], rtol=1e-6)
    np.testing.assert_allclose(std, [[0.0, np.sqrt(1.62)]], rtol=1e-6)
    np.testing.assert_allclose(ucb_scores(Q, 0.1), [[1.0, 0.9 + 0.1 * np.sqrt(1.62)]], rtol=1e-6)
    assert int(ucb_actions(Q, 0.0)[0]) == 0  # the mean's argmax
    assert int(ucb_actions(Q, 0.1)[0]) == 1  # 0.9 + 0.127 > 1: the bonus picks the uncertain action
    assert int(ucb_actions(Q, 0.05)[0]) == 0  # 0.9 + 0.064 < 1
    # the unbiased std (ddof 1): sqrt(4.86 / 2)
    np.testing.assert_allclose(ensemble_mean_std(Q, ddof=1)[1], [[0.0, np.sqrt(2.43)]], rtol=1e-6)
    assert ucb_actions(Q, 0.1).dtype == jnp.int32


def test_ucb_batch_matches_numpy():
    q = np.random.default_rng(0).normal(size=(10, 64, 5)).astype(np.float32)
    want = (q.mean(0) + 0.3 * q.std(0)).argmax(-1)
    np.testing.assert_array_equal(ucb_actions(jnp.asarray(q), 0.3), want)
    assert ucb_actions(jnp.asarray(q), 0.3).shape == (64,)


def test_vote_hand_values_and_ties():
    q = jnp.array([
        # state 0: greedy actions 2, 1, 2, 1 -> a 2-2 tie between actions 1 and 2: the lower index, 1
        [[0, 0, 1], [0, 5, 0], [0, 0, 3], [1, 2, 0]],
        # state 1: 0, 0, 2, 1 -> action 0 by majority (2 votes); head 1's Q ties (5, 5, 0): its argmax is 0
        [[3, 1, 0], [5, 5, 0], [0, 0, 1], [0, 1, 0]],
    ], jnp.float32).transpose(1, 0, 2)  # [K=4, B=2, A=3]
    np.testing.assert_array_equal(vote_counts(q), [[0, 2, 2], [2, 1, 1]])
    np.testing.assert_array_equal(vote_actions(q), [1, 0])
    # one head out-voted by three that agree on an action with a lower mean
    q = jnp.array([[[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]], [[100.0, 0.0]]])
    assert int(vote_actions(q)[0]) == 1 and int(ucb_actions(q, 0.0)[0]) == 0


@pytest.mark.parametrize("p", [0.5, 0.9])
def test_mask_inclusion_frequency(p):
    """Each entry is Bernoulli(p): the overall frequency within 4 binomial standard errors, each head's
    (column's) within 4 of its own, heads and transitions uncorrelated (fixed seed)."""
    n, k = 20_000, 10
    m = np.asarray(bootstrap_masks(jax.random.PRNGKey(0), (n, k), p))
    assert m.shape == (n, k) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    assert abs(m.mean() - p) < 4 * np.sqrt(p * (1 - p) / (n * k))
    assert (np.abs(m.mean(0) - p) < 4 * np.sqrt(p * (1 - p) / n)).all()
    corr = np.corrcoef(m[:, 0], m[:, 1])[0, 1]
    assert abs(corr) < 4 / np.sqrt(n)


def test_masks_from_bits_edges_and_threshold():
    bits = jax.random.bits(jax.random.PRNGKey(1), (1000, 3), jnp.uint32)
    np.testing.assert_array_equal(bootstrap_masks_from_bits(bits, 1.0), np.ones((1000, 3)))
    np.testing.assert_array_equal(bootstrap_masks_from_bits(bits, 0.0), np.zeros((1000, 3)))
    # uniform = (bits >> 9) / 2^23: the mask is 1 exactly where that is below p
    want = ((np.asarray(bits) >> 9) / 2.0**23 < 0.3).astype(np.float32)
    np.testing.assert_array_equal(bootstrap_masks_from_bits(bits, 0.3), want)
    with pytest.raises(ValueError, match="must be in"):
        bootstrap_masks_from_bits(bits, 1.5)


def test_masked_head_loss_hand_value():
    losses = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # [K=2, B=3]
    masks = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    # head 0: (1 + 3) / 3, head 1: 6 / 3; summed over heads (each head's gradient is its own loss's)
    np.testing.assert_allclose(masked_head_loss(losses, masks), (1 + 3) / 3 + 6 / 3, rtol=1e-6)


def test_scale_gradient_keeps_the_value_and_scales_the_gradient():
    x = jnp.array([0.3, -1.7, 2.5e-8, 1e6])
    np.testing.assert_array_equal(scale_gradient(x, 0.1), x)
    f = lambda v: (jnp.sin(scale_gradient(v, 0.25)) * jnp.arange(1.0, 5.0)).sum()
    np.testing.assert_allclose(jax.grad(f)(x), 0.25 * jnp.cos(x) * jnp.arange(1.0, 5.0), rtol=1e-6)
