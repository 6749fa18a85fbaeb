import jax.numpy as jnp
import numpy as np

from surrogate.core.normalize import init_return_norm, init_stats, normalize, scale_rewards, update_stats


def test_running_stats_match_full_batch_statistics_on_both_backends():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (5, 17, 1, 40)]
    allx = np.concatenate(batches)
    for xp in (np, jnp):
        s = init_stats((4,), xp)
        for b in batches:
            s = update_stats(s, xp.asarray(b))
        np.testing.assert_allclose(s.mean, allx.mean(0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(s.var, allx.var(0), rtol=1e-3)
        z = normalize(s, xp.asarray(allx))
        np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-3)


def test_reward_scaling_same_on_numpy_and_jax_and_uses_discounted_return():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(30, 2)).astype(np.float32)
    d = rng.random((30, 2)) < 0.1
    s_np, out_np = scale_rewards(init_return_norm(2, np), r, d, 0.9, np)
    s_j, out_j = scale_rewards(init_return_norm(2, jnp), jnp.asarray(r), jnp.asarray(d), 0.9, jnp)
    np.testing.assert_allclose(out_np, out_j, rtol=1e-5)
    np.testing.assert_allclose(s_np.returns, s_j.returns, rtol=1e-5)
    # the statistics are those of the running discounted returns
    ret, running = [], np.zeros(2)
    for t in range(30):
        running = 0.9 * running + r[t]
        ret.append(running.copy())
        running = running * (1 - d[t])
    np.testing.assert_allclose(out_np, r / np.sqrt(np.var(np.concatenate(ret)) + 1e-8), rtol=2e-3)
