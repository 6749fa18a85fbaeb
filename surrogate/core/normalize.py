"""Running mean / variance for observation and reward normalization.

Written with array methods and operators only, so the same functions serve NumPy
arrays (host rollouts) and JAX arrays (jitted rollouts). The merge is Chan et al.'s
parallel variance update, as in OpenAI baselines' ``RunningMeanStd``.
"""
from typing import NamedTuple

import jax
import numpy as np


class RunningStats(NamedTuple):
    mean: object
    var: object
    count: object


def init_stats(shape, xp):
    """Stats for samples of ``shape``; ``xp`` is ``numpy`` or ``jax.numpy``."""
    return RunningStats(xp.zeros(shape, xp.float32), xp.ones(shape, xp.float32), xp.asarray(1e-4, xp.float32))


def update_stats(stats: RunningStats, batch) -> RunningStats:
    """Merge a batch (leading axis = samples) into the running statistics."""
    b_mean = batch.mean(axis=0)
    b_var = batch.var(axis=0)
    b_count = batch.shape[0]
    delta = b_mean - stats.mean
    total = stats.count + b_count
    mean = stats.mean + delta * (b_count / total)
    m2 = stats.var * stats.count + b_var * b_count + delta**2 * (stats.count * b_count / total)
    return RunningStats(mean.astype(stats.mean.dtype), (m2 / total).astype(stats.var.dtype), total.astype(stats.count.dtype))


def normalize(stats: RunningStats, x, clip: float = 10.0, eps: float = 1e-8):
    """``clip((x - mean) / sqrt(var + eps), -clip, clip)``."""
    z = (x - stats.mean) / (stats.var + eps) ** 0.5
    return z.clip(-clip, clip)


class ReturnNormState(NamedTuple):
    """Reward scaling by the std of the discounted return (Engstrom et al. 2020; SB3 VecNormalize)."""

    returns: object  # running discounted return per env
    stats: RunningStats  # of those returns


def init_return_norm(num_envs, xp):
    return ReturnNormState(xp.zeros((num_envs,), xp.float32), init_stats((), xp))


def scale_rewards(state: ReturnNormState, rewards, dones, gamma: float, xp, clip: float = 10.0, eps: float = 1e-8):
    """Scale a ``[T, N]`` batch of rewards by the std of the running discounted return.

    The return ``R_t = gamma * R_{t-1} + r_t`` (reset after episode ends) is tracked per env
    across batches; its statistics absorb this batch, then every reward is divided by the std.
    """
    if xp is np:  # a loop over Python floats per env: faster than one over NumPy rows of size N
        returns = np.empty(rewards.shape, np.float32)
        running = np.array(state.returns, np.float32)
        for i in range(rewards.shape[1]):
            g, column = float(running[i]), []
            for r, d in zip(rewards[:, i].tolist(), dones[:, i].tolist()):
                g = g * gamma + r
                column.append(g)
                if d:
                    g = 0.0
            returns[:, i], running[i] = column, g
    else:
        def step(running, x):
            r, d = x
            running = running * gamma + r
            return running * (1.0 - d), running

        running, returns = jax.lax.scan(step, state.returns, (rewards, dones.astype(rewards.dtype)))
    stats = update_stats(state.stats, returns.reshape(-1))
    scaled = (rewards / (stats.var + eps) ** 0.5).clip(-clip, clip)
    return ReturnNormState(running.astype(state.returns.dtype), stats), scaled
