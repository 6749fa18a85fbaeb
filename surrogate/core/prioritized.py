"""Proportional prioritized experience replay (Schaul, Quan, Antonoglou & Silver 2016, sec. 3.3 and 3.4).

A transition ``i`` is replayed with probability ``P(i) = p_i^alpha / sum_k p_k^alpha`` (eq. 1) with
``p_i = |delta_i| + eps`` its last TD error's magnitude (new transitions get the largest priority
seen so far, so each is replayed at least once in expectation), and its update is weighted by the
importance-sampling weight ``w_i = (N P(i))^-beta / max_j w_j`` (sec. 3.4; the max over the minibatch,
Algorithm 1 line 10), with ``beta`` annealed from ``beta_0`` to 1 over training.

The priorities live in one ``[capacity]`` array beside the replay buffer's items, holding
``p_i^alpha`` (so sampling raises nothing to a power). Sampling is by inversion of the cumulative
sum, in two levels (``sample_proportional``): ``O(capacity)`` work per minibatch with no sequential
loop (benchmarks/README.md, "Prioritized replay", for the choice against flashbax's sum tree). Draws are i.i.d. (the paper's Appendix B.2.1 stratifies
them over ``k`` equal ranges of the total; both sample proportionally).
"""
import math

import jax
import jax.numpy as jnp


def sample_proportional(priorities, size, key, batch_size: int):
    """``batch_size`` slot indices drawn i.i.d. with ``P(i) = priorities[i] / sum``, over the first
    ``size`` slots (``priorities`` holds ``p^alpha``); returns ``(indices, P(indices))``.

    Inverts the cumulative sum in two levels, as a sum tree of depth two built on the fly: the
    priorities as a ``[rows, width]`` grid (``width ~ sqrt(capacity)``), a draw picks its row from the
    cumulative row sums and then its slot from that row's cumulative sum. (XLA:CPU's ``cumsum`` over
    100k priorities alone cost ~0.33 ms; this costs a sum and cumulative sums of ~320 entries.)"""
    capacity = priorities.shape[0]
    width = math.isqrt(capacity - 1) + 1
    rows = -(-capacity // width)
    p = jnp.where(jnp.arange(capacity) < size, priorities, 0.0)
    grid = jnp.pad(p, (0, rows * width - capacity)).reshape(rows, width)
    cumsum = lambda x: jax.lax.associative_scan(jnp.add, x, axis=x.ndim - 1)  # XLA:CPU's cumsum: ~3x slower
    row_cdf = cumsum(grid.sum(1))
    total = row_cdf[-1]
    u = jax.random.uniform(key, (batch_size,), p.dtype) * total
    row = jnp.minimum((row_cdf[None, :] <= u[:, None]).sum(1), rows - 1)
    u_row = u - (row_cdf[row] - grid[row].sum(1))  # the draw's position inside its row
    col = jnp.minimum((cumsum(grid[row]) <= u_row[:, None]).sum(1), width - 1)
    idx = jnp.minimum(row * width + col, jnp.maximum(size, 1) - 1)
    return idx, p[idx] / jnp.maximum(total, jnp.finfo(p.dtype).tiny)


def importance_weights(probs, size, beta):
    """``w_i = (N P(i))^-beta / max_j w_j``, the max over the last axis (a minibatch; Schaul et al. 2016, sec. 3.4)."""
    w = (size * probs) ** (-beta)
    return w / w.max(-1, keepdims=True)


def beta_schedule(beta0: float, fraction):
    """``beta`` linear from ``beta0`` to 1 as ``fraction`` of training goes from 0 to 1 (sec. 3.4)."""
    return beta0 + (1.0 - beta0) * jnp.clip(fraction, 0.0, 1.0)


def new_priorities(td_errors, alpha: float, eps: float = 1e-6):
    """``(|delta| + eps)^alpha``: what the sampled slots store after their update (eq. 1, proportional)."""
    return (jnp.abs(td_errors) + eps) ** alpha


def sample_prioritized(priorities, size, key, shape: tuple, beta):
    """Slot indices of ``shape = (minibatches, batch_size)`` drawn by ``sample_proportional`` and their
    importance weights, normalised by the max within each minibatch."""
    idx, probs = sample_proportional(priorities, size, key, shape[0] * shape[1])
    return idx.reshape(shape), importance_weights(probs.reshape(shape), size, beta)
