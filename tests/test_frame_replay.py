"""``core.frame_replay``: stacked frames stored once give back exactly the transitions a plain buffer holds,
on synthetic streams (resets, several envs, a buffer that wraps) and on ale-py's Breakout through DQN."""
import surrogate  # noqa: F401  (first: sets the host device count before jax is imported)
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import dqn
from surrogate.core import frame_replay
from surrogate.core.replay import add_batch, init_replay
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import Batch

STACK, SIDE = 4, 5


def synthetic_rollouts(num_envs, steps, iterations, seed=0, padding="zero"):
    """``iterations`` rollouts ``[steps, num_envs]`` of zero-padded frame stacks (``padding="repeat"``: the
    reset frame repeated instead); episodes end with probability 0.15 a step (next obs: the final one)."""
    rng = np.random.default_rng(seed)
    new_frame = lambda: rng.integers(1, 256, (SIDE, SIDE)).astype(np.uint8)

    def reset_stack():
        x = new_frame()
        pad = np.zeros_like(x) if padding == "zero" else x
        return np.stack([pad] * (STACK - 1) + [x], -1)

    obs = [reset_stack() for _ in range(num_envs)]
    for _ in range(iterations):
        o, nxt, done = [], [], []
        for _ in range(steps):
            o.append(np.stack(obs))
            step_next = [np.concatenate([s[..., 1:], new_frame()[..., None]], -1) for s in obs]
            d = rng.random(num_envs) < 0.15
            nxt.append(np.stack(step_next))
            done.append(d)
            obs = [reset_stack() if d[e] else step_next[e] for e in range(num_envs)]
        o, nxt, done = np.stack(o), np.stack(nxt), np.stack(done)
        actions = rng.integers(0, 4, done.shape).astype(np.int32)
        yield Batch(o, actions, rng.normal(size=done.shape).astype(np.float32), done, done, nxt)


def rebuildable_slots(written, capacity, num_envs):
    """Slots of the transitions written ``written - capacity + (STACK - 1) * num_envs`` and later."""
    first = max(0, written - capacity + (STACK - 1) * num_envs) if written >= capacity else 0
    return np.arange(first, written) % capacity, np.arange(first, written)


def test_stacks_rebuilt_exactly_across_resets_envs_and_wraparound():
    num_envs, steps, capacity = 3, 4, 29  # capacity not a multiple of num_envs: slots of one env drift
    carry = frame_replay.init_carry(num_envs, (SIDE, SIDE, STACK), jnp.uint8)
    state = init_replay(capacity, frame_replay.example_item((SIDE, SIDE, STACK), jnp.uint8))
    compress = jax.jit(frame_replay.compress)
    truth = []  # every transition ever written, in write order
    for batch in synthetic_rollouts(num_envs, steps, iterations=25):
        items, carry = compress(carry, batch.obs, batch.actions, batch.rewards,
                                batch.terminations.astype(np.float32), batch.next_obs)
        state = add_batch(state, items)
        flat = lambda x: x.reshape(-1, *x.shape[2:])
        truth += list(zip(flat(batch.obs), flat(batch.next_obs), flat(batch.actions), flat(batch.rewards)))
        slots, order = rebuildable_slots(len(truth), capacity, num_envs)
        got = frame_replay.rebuild(state, jnp.asarray(slots), num_envs, STACK)
        np.testing.assert_array_equal(got.obs, np.stack([truth[w][0] for w in order]))
        np.testing.assert_array_equal(got.next_obs, np.stack([truth[w][1] for w in order]))
        np.testing.assert_array_equal(got.action, [truth[w][2] for w in order])
        np.testing.assert_array_equal(got.reward, [truth[w][3] for w in order])
    assert len(truth) > 3 * capacity and int(carry.mismatches) == 0
    drawn = np.asarray(frame_replay.sample_indices(state, jax.random.PRNGKey(0), (20_000,), num_envs, STACK))
    assert set(drawn) == set(slots)  # uniform over exactly the rebuildable slots
    assert np.bincount(drawn, minlength=capacity)[slots].min() > 20_000 / len(slots) * 0.8


def test_stacks_it_cannot_give_back_are_counted():
    """Reset stacks padded with the reset frame (not zeros) cannot be rebuilt: each is a mismatch."""
    carry = frame_replay.init_carry(2, (SIDE, SIDE, STACK), jnp.uint8)
    for batch in synthetic_rollouts(2, 8, iterations=3, padding="repeat"):
        _, carry = frame_replay.compress(carry, batch.obs, batch.actions, batch.rewards,
                                         batch.terminations.astype(np.float32), batch.next_obs)
    assert int(carry.mismatches) > 0


@pytest.mark.parametrize("implementation", ["ale_vector", "gymnasium_async"])
def test_dqn_frame_replay_holds_what_the_plain_buffer_holds_on_breakout(implementation):
    """DQN's store on real Breakout rollouts (2 envs, lives lost and games over) of either vector env: the
    frame buffer rebuilds every rebuildable slot's transition exactly as the plain buffer stores it."""
    env = envs.make("ALE/Breakout-v5", implementation=implementation)
    base = dataclasses.replace(dqn.PRESETS["atari"], env="ALE/Breakout-v5", total_steps=10_000, num_envs=2,
                               buffer_size=101, learning_starts=50)
    plain_cfg, frame_cfg = dataclasses.replace(base, frame_replay=False).validate(), base.validate()
    key = jax.random.PRNGKey(0)
    plain, frames = dqn.init(plain_cfg, env, key), dqn.init(frame_cfg, env, key)
    assert frames.replay.items.frame.shape == (101, 84, 84)
    store_plain, store_frames = (jax.jit(lambda s, b, c=c: dqn.store(c, s, b)) for c in (plain_cfg, frame_cfg))
    venv, rng = env.vector(2, 0), np.random.default_rng(0)
    obs, written, ends = venv.obs.copy(), 0, 0
    for _ in range(120):  # 4 steps of 2 envs each
        rows = []
        for _ in range(4):
            a = rng.integers(0, env.action_dim, 2).astype(np.int32)
            nxt, r, te, tr, final = venv.step(a)
            rows.append((obs, a, r, te, te | tr, final))
            ends += int(te.sum())
            obs = nxt.copy()
        batch = Batch(*(np.stack(x) for x in zip(*rows)))
        plain, frames = store_plain(plain, batch), store_frames(frames, batch)
        written += 8
    slots, _ = rebuildable_slots(written, 101, 2)
    got = frame_replay.rebuild(frames.replay, jnp.asarray(slots), 2, STACK)
    for field in ("obs", "next_obs", "action", "reward", "terminal"):
        np.testing.assert_array_equal(getattr(got, field), getattr(plain.replay.items, field)[slots], err_msg=field)
    assert ends >= 4 and int(frames.window.mismatches) == 0
    batches, idx, _ = dqn.minibatches(frame_cfg, frames, jax.random.PRNGKey(1))
    assert batches.obs.shape == (1, 32, 84, 84, 4) and set(np.asarray(idx).ravel()) <= set(slots)


def test_frame_replay_is_a_quarter_of_the_memory_and_validated():
    item_bytes = lambda item: sum(np.asarray(x).nbytes for x in jax.tree.leaves(item))
    frame = item_bytes(frame_replay.example_item((84, 84, 4), jnp.uint8))
    assert frame * 1_000_000 < 14 * 2**30  # CleanRL's 1M buffer fits a 24 GiB machine (53 GiB as stacks)
    for change in (dict(network="mlp"), dict(n_step=3), dict(prioritized=True), dict(buffer_size=5)):
        with pytest.raises(ConfigError, match="frame_replay|buffer_size"):
            dataclasses.replace(dqn.PRESETS["atari"], **change).validate()
