"""A circular (FIFO) experience-replay buffer as pure functions on a pytree.

Experience replay, Lin 1992; used with uniform sampling by DQN, Mnih et al. 2015
(Methods, "experience replay" and Algorithm 1): the last ``capacity`` transitions are
kept and minibatches are drawn uniformly at random from them.

The state is a plain pytree (:class:`ReplayState`), so a buffer lives inside a jitted
``lax.scan`` and ``vmap``s over seeds like any other array. ``items`` has the structure
of one transition with a leading ``capacity`` axis; ``position`` is the slot the next
write goes to and ``size`` the number of slots filled (at most ``capacity``).
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ReplayState(NamedTuple):
    items: Any  # pytree, every leaf [capacity, ...]
    position: jax.Array  # int32 scalar: next slot to write
    size: jax.Array  # int32 scalar: number of stored items, <= capacity


def init_replay(capacity: int, example_item) -> ReplayState:
    """An empty buffer of ``capacity`` slots shaped like ``example_item`` (one transition)."""
    items = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example_item)
    return ReplayState(items, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def capacity_of(state: ReplayState) -> int:
    return jax.tree.leaves(state.items)[0].shape[0]


def add_batch(state: ReplayState, batch) -> ReplayState:
    """Write ``n`` transitions (leading axis of every leaf; ``n`` static) at
    ``position, ..., position + n - 1`` modulo capacity, overwriting the oldest items.

    When ``n > capacity`` only the last ``capacity`` transitions of the batch are kept,
    exactly as if they had been added one by one.
    """
    capacity = capacity_of(state)
    n = jax.tree.leaves(batch)[0].shape[0]
    skip = max(n - capacity, 0)
    if skip:
        batch = jax.tree.map(lambda x: x[skip:], batch)
    m = n - skip
    idx = (state.position + skip + jnp.arange(m)) % capacity
    items = jax.tree.map(lambda buf, x: buf.at[idx].set(x.astype(buf.dtype)), state.items, batch)
    position = (state.position + n) % capacity
    size = jnp.minimum(state.size + n, capacity)
    return ReplayState(items, position.astype(jnp.int32), size.astype(jnp.int32))


def sample_indices(state: ReplayState, key, batch_size: int):
    """``batch_size`` slot indices drawn uniformly with replacement from the ``size``
    stored items (slots ``0 .. size-1``: the buffer fills from slot 0, so these are
    exactly the filled slots). On an empty buffer every index is 0."""
    return jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))


def sample(state: ReplayState, key, batch_size: int):
    """A uniform minibatch (with replacement) of stored transitions: a pytree shaped like
    one transition with a leading ``batch_size`` axis (Mnih et al. 2015, Algorithm 1)."""
    idx = sample_indices(state, key, batch_size)
    return jax.tree.map(lambda buf: buf[idx], state.items)


def add_masked(state: ReplayState, batch, valid) -> ReplayState:
    """``add_batch`` of only the transitions where ``valid [n]`` (bool) is true, in order; the others
    are dropped (an out-of-range scatter index). For a write whose first rows may not be transitions
    yet (n-step transitions before a run has taken n steps). Valid rows must number <= capacity."""
    capacity = capacity_of(state)
    valid = valid.astype(jnp.int32)
    rank = jnp.cumsum(valid) - 1  # the position among the valid rows
    idx = jnp.where(valid > 0, (state.position + rank) % capacity, capacity)
    items = jax.tree.map(lambda buf, x: buf.at[idx].set(x.astype(buf.dtype), mode="drop"), state.items, batch)
    n = valid.sum()
    return ReplayState(items, ((state.position + n) % capacity).astype(jnp.int32),
                       jnp.minimum(state.size + n, capacity).astype(jnp.int32))
