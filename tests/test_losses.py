import jax
import jax.numpy as jnp
import numpy as np

from surrogate.core.losses import clipped_surrogate_loss, value_loss


def numpy_clipped_loss(logp, old_logp, adv, eps):
    ratio = np.exp(logp - old_logp)
    return -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv))


def test_clipped_surrogate_matches_numpy_reference():
    rng = np.random.default_rng(1)
    old = rng.normal(size=256).astype(np.float32)
    new = old + rng.normal(scale=0.5, size=256).astype(np.float32)  # many ratios outside [0.8, 1.2]
    adv = rng.normal(size=256).astype(np.float32)
    loss, info = clipped_surrogate_loss(jnp.asarray(new), jnp.asarray(old), jnp.asarray(adv), 0.2)
    np.testing.assert_allclose(loss, numpy_clipped_loss(new, old, adv, 0.2), rtol=1e-5)
    ratio = np.exp(new - old)
    np.testing.assert_allclose(info["clip_frac"], np.mean(np.abs(ratio - 1) > 0.2), rtol=1e-6)
    assert 0.2 < float(info["clip_frac"]) < 0.9


def test_clipped_samples_get_no_gradient():
    # ratio 1.5 with positive advantage and ratio 0.5 with negative advantage are clipped: zero gradient;
    # ratio 0.5 with positive advantage is not (the min picks the unclipped term).
    old = jnp.zeros(3)
    adv = jnp.array([1.0, -1.0, 1.0])
    new = jnp.log(jnp.array([1.5, 0.5, 0.5]))
    grad = jax.grad(lambda lp: clipped_surrogate_loss(lp, old, adv, 0.2)[0])(new)
    np.testing.assert_allclose(grad, [0.0, 0.0, -0.5 / 3], atol=1e-7)


def test_value_loss_clipping_matches_numpy():
    rng = np.random.default_rng(2)
    v, old, tgt = (rng.normal(size=64).astype(np.float32) for _ in range(3))
    clipped = old + np.clip(v - old, -0.2, 0.2)
    want = 0.5 * np.mean(np.maximum((v - tgt) ** 2, (clipped - tgt) ** 2))
    np.testing.assert_allclose(value_loss(v, old, tgt, 0.2), want, rtol=1e-5)
    np.testing.assert_allclose(value_loss(v, old, tgt), 0.5 * np.mean((v - tgt) ** 2), rtol=1e-5)


def test_distributions_match_scipy_closed_forms():
    from scipy import stats

    from surrogate.core.distributions import Categorical, DiagGaussian

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    actions = rng.integers(0, 4, size=5)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    cat = Categorical(jnp.asarray(logits))
    np.testing.assert_allclose(cat.log_prob(jnp.asarray(actions)), np.log(p[np.arange(5), actions]), rtol=1e-5)
    np.testing.assert_allclose(cat.entropy(), stats.entropy(p, axis=-1), rtol=1e-5)
    mean, log_std = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32) * 0.5
    a = rng.normal(size=(5, 3)).astype(np.float32)
    g = DiagGaussian(jnp.asarray(mean), jnp.asarray(log_std))
    np.testing.assert_allclose(g.log_prob(jnp.asarray(a)), stats.norm.logpdf(a, mean, np.exp(log_std)).sum(-1),
                               rtol=1e-5)
    np.testing.assert_allclose(g.entropy(), stats.norm.entropy(mean, np.exp(log_std)).sum(-1), rtol=1e-5)
    # samples have the right moments
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    draws = np.asarray(jax.vmap(lambda k: g.sample(k))(keys))
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(draws.std(0), np.exp(log_std), rtol=0.05)
    counts = np.bincount(np.asarray(jax.vmap(lambda k: cat.sample(k))(keys))[:, 0], minlength=4) / 20000
    np.testing.assert_allclose(counts, p[0], atol=0.02)


def test_kl_divergences_match_scipy_and_monte_carlo():
    from scipy import stats

    from surrogate.core.distributions import Categorical, DiagGaussian

    rng = np.random.default_rng(4)
    lp, lq = rng.normal(size=(2, 6, 5)).astype(np.float32)
    p, q = (np.exp(x) / np.exp(x).sum(-1, keepdims=True) for x in (lp, lq))
    kl = Categorical(jnp.asarray(lp)).kl(Categorical(jnp.asarray(lq)))
    np.testing.assert_allclose(kl, stats.entropy(p, q, axis=-1), rtol=1e-4)
    m1, m2 = rng.normal(size=(2, 6, 3)).astype(np.float32)
    s1, s2 = (0.5 * rng.normal(size=(6, 3))).astype(np.float32), (0.5 * rng.normal(size=(6, 3))).astype(np.float32)
    g1, g2 = DiagGaussian(jnp.asarray(m1), jnp.asarray(s1)), DiagGaussian(jnp.asarray(m2), jnp.asarray(s2))
    # Monte Carlo: E_{x ~ g1}[log g1(x) - log g2(x)]
    x = m1 + np.exp(s1) * rng.normal(size=(200_000, 6, 3)).astype(np.float32)
    mc = (stats.norm.logpdf(x, m1, np.exp(s1)) - stats.norm.logpdf(x, m2, np.exp(s2))).sum(-1).mean(0)
    np.testing.assert_allclose(g1.kl(g2), mc, rtol=0.03, atol=0.01)
    np.testing.assert_allclose(g1.kl(g1), 0.0, atol=1e-6)


def test_noise_from_bits_is_jax_random_gumbel_and_normal_bit_for_bit():
    """The rollout's noise comes from raw bits (one draw for noise and keys); it must be exactly what
    jax.random makes of the same bits, extremes included (all-zero and all-one bits)."""
    from surrogate.core.distributions import noise_from_bits

    key = jax.random.PRNGKey(11)
    bits = jax.random.bits(key, (4096,))
    np.testing.assert_array_equal(noise_from_bits(bits, True), jax.random.gumbel(key, (4096,)))
    np.testing.assert_array_equal(noise_from_bits(bits, False), jax.random.normal(key, (4096,)))
    edges = jnp.array([0, 2**32 - 1], jnp.uint32)
    for discrete in (True, False):
        assert np.isfinite(np.asarray(noise_from_bits(edges, discrete))).all()
