import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from surrogate.core.replay import ReplayState, add_batch, init_replay, sample, sample_indices


def _item():
    return {"obs": jnp.zeros(4, jnp.float32), "action": jnp.zeros((), jnp.int32), "reward": jnp.zeros(())}


def _batch(start, n):
    ids = jnp.arange(start, start + n)
    return {"obs": jnp.tile(ids[:, None], (1, 4)).astype(jnp.float32), "action": ids.astype(jnp.int32),
            "reward": ids.astype(jnp.float32)}


def test_init_shapes():
    s = init_replay(8, _item())
    assert isinstance(s, ReplayState)
    assert s.items["obs"].shape == (8, 4) and s.items["action"].dtype == jnp.int32
    assert int(s.position) == 0 and int(s.size) == 0


def test_sampling_is_uniform_over_stored_items():
    s = add_batch(init_replay(64, _item()), _batch(0, 37))
    assert int(s.size) == 37 and int(s.position) == 37
    draws = np.asarray(jax.jit(sample_indices, static_argnums=2)(s, jax.random.key(0), 200_000))
    assert draws.min() >= 0 and draws.max() < 37  # never an unstored slot
    counts = np.bincount(draws, minlength=64)
    assert counts[37:].sum() == 0
    assert stats.chisquare(counts[:37]).pvalue > 1e-3
    batch = sample(s, jax.random.key(1), 1000)
    assert batch["obs"].shape == (1000, 4)
    np.testing.assert_array_equal(batch["obs"][:, 0], batch["action"])  # rows stay together


def test_circular_overwrite_keeps_newest():
    cap = 10
    add = jax.jit(add_batch)
    s = init_replay(cap, _item())
    start = 0
    for n in (4, 4, 4, 7, 3):  # the third and fourth batches wrap around the end
        s = add(s, _batch(start, n))
        start += n
        kept = np.arange(max(0, start - cap), start)
        assert int(s.size) == min(start, cap) and int(s.position) == start % cap
        np.testing.assert_array_equal(np.sort(np.asarray(s.items["action"])[: int(s.size)]), kept)
    # slot i holds the item whose id is congruent to i modulo capacity
    np.testing.assert_array_equal(np.asarray(s.items["action"]) % cap, np.arange(cap))
    np.testing.assert_array_equal(s.items["obs"][:, 0], s.items["reward"])
    # a batch larger than the capacity keeps its last `cap` items, as if added one by one
    s2 = add_batch(s, _batch(start, 25))
    assert sorted(np.asarray(s2.items["action"]).tolist()) == list(range(start + 15, start + 25))
    assert int(s2.position) == (start + 25) % cap and int(s2.size) == cap
    np.testing.assert_array_equal(np.asarray(s2.items["action"]) % cap, np.arange(cap))


def test_vmap_over_seeds():
    def run(key):
        def step(s, x):
            k_add, k_s = jax.random.split(x)
            b = {"obs": jax.random.normal(k_add, (3, 4)), "action": jnp.full(3, s.size, jnp.int32),
                 "reward": jnp.ones(3)}
            s = add_batch(s, b)
            return s, sample(s, k_s, 5)["action"]

        return jax.lax.scan(step, init_replay(7, _item()), jax.random.split(key, 4))

    states, drawn = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 3))
    assert states.items["obs"].shape == (3, 7, 4) and drawn.shape == (3, 4, 5)
    np.testing.assert_array_equal(states.size, [7, 7, 7])
    np.testing.assert_array_equal(states.position, [12 % 7] * 3)
    assert not np.allclose(states.items["obs"][0], states.items["obs"][1])  # seeds differ
    # step k has added 3(k+1) items whose action ids are 3j (j <= k); draws come only from them
    for k in range(4):
        assert set(np.asarray(drawn[:, k]).ravel().tolist()) <= {min(3 * j, 7) for j in range(k + 1)}
