"""Shuffled minibatches: one random permutation of the rows per epoch, and the rows reshaped into
minibatches for a ``scan`` (PPO's epochs, the value function's regression)."""
import math

import jax
import jax.numpy as jnp


def epoch_permutations(key, num_epochs: int, rows: int):
    """One uniformly random permutation of ``range(rows)`` per epoch: the order that sorts random keys,
    as ``jax.random.permutation`` draws it, but with each key packed into one uint32 (random high bits,
    the row's position in the low ``b = ceil(log2 rows)`` bits) so that each round is a sort of one
    array of distinct integers, which XLA:CPU sorts several times faster than (key, index) pairs
    (benchmarks/README.md), and one random-number call serves every epoch and round.

    Rows whose random parts tie keep their previous relative order, as in ``jax.random.permutation``;
    like it, we use enough rounds (each re-sorting the previous order) for ``3 log2(rows)`` random bits
    in all: ``ceil(3 log2(rows) / (32 - b))`` rounds, 1 for rows <= 256, 2 up to 2^13."""
    index_bits = max(1, (rows - 1).bit_length())
    rounds = max(1, math.ceil(3 * math.log2(max(rows, 2)) / (32 - index_bits)))
    low = jnp.uint32((1 << index_bits) - 1)
    position = jnp.arange(rows, dtype=jnp.uint32)
    bits = jax.random.bits(key, (rounds, num_epochs, rows))
    perm = None
    for r in range(rounds):
        order = (jnp.sort((bits[r] & ~low) | position, axis=1) & low).astype(jnp.int32)
        perm = order if perm is None else jnp.take_along_axis(perm, order, axis=1)
    return perm


def shuffled_minibatches(perm, data, num_minibatches: int):
    """Every field of ``data`` with its rows in the order ``perm`` and reshaped to
    ``[num_minibatches, rows // num_minibatches, ...]``, for a ``scan`` over minibatches."""
    return jax.tree.map(lambda x: x[perm].reshape(num_minibatches, -1, *x.shape[1:]), data)
