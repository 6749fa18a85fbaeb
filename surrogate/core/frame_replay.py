"""Replay of frame-stacked images that stores each frame once (the Atari DQN's 1M buffer in 13 GiB, not 53).

DQN's Atari agents see the last ``S = 4`` frames stacked (Mnih et al. 2015, Methods, "Preprocessing"):
consecutive observations of one env share ``S - 1`` frames, so a buffer of ``(obs, next_obs)`` stacks holds
every frame ``2 S`` times, 56 KB a transition at 84x84. Here a slot keeps the newest frame of its
observation and of its next observation (14 KB) and ``depth``, how many of the observation's older frames
are the newest frames of the same env's previous slots (0 to ``S - 1``); frames older than that are zero,
as in ale-py's and Gymnasium's zero-padded stacks after a reset. Rollouts are stored time-major, so an
env's previous slot is ``num_envs`` slots back; a minibatch rebuilds each stack by gathering from there.

Exactness is checked, not assumed: ``depth`` comes from comparing each observation with its env's previous
one frame by frame, and ``FrameCarry.mismatches`` counts the transitions whose stacks this layout cannot
give back (older frames that are neither shared nor zero, or a next observation that is not the
observation shifted by one frame). Sampling skips the oldest ``(S - 1) * num_envs`` slots of a full
buffer, whose previous slots were overwritten. (Dopamine's and SB3's ``optimize_memory_usage`` buffers
save the same way, by frames or by next observations; this one keeps one step per env per slot so that
a slot is one transition, as in ``core.replay``.)
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from surrogate.core.nstep import Transition
from surrogate.core.replay import ReplayState, capacity_of


class FrameItem(NamedTuple):
    """One stored transition: the newest frames of ``obs`` and ``next_obs``, ``[H, W]`` each."""

    frame: Any
    depth: Any  # int32: older frames of obs shared with the env's previous slots
    action: Any
    reward: Any
    terminal: Any
    next_frame: Any


class FrameCarry(NamedTuple):
    """Per env, the last observation stored and its depth; the count of non-representable transitions."""

    obs: Any  # [num_envs, H, W, S]
    depth: Any  # [num_envs] int32
    started: Any  # [num_envs] bool: obs is a stored observation (false before the first step)
    mismatches: Any  # int32 scalar


def example_item(obs_shape, obs_dtype) -> FrameItem:
    frame = jnp.zeros(obs_shape[:-1], obs_dtype)
    return FrameItem(frame, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.float32(0), jnp.float32(0),
                     frame)


def init_carry(num_envs: int, obs_shape, obs_dtype) -> FrameCarry:
    return FrameCarry(jnp.zeros((num_envs, *obs_shape), obs_dtype), jnp.zeros(num_envs, jnp.int32),
                      jnp.zeros(num_envs, bool), jnp.zeros((), jnp.int32))


def compress(carry: FrameCarry, obs, actions, rewards, terminals, next_obs):
    """``(items, carry)``: a ``[T, N]`` rollout's transitions as ``FrameItem``s flattened time-major to
    ``[T * N]`` (``add_batch`` them in this order), their depths found by comparing frames."""
    stack = obs.shape[-1]
    older = jnp.arange(stack - 1)  # stack positions of the older frames; position k is stack - 1 - k steps back

    def step(c: FrameCarry, x):
        o, nxt = x  # [N, H, W, S]
        same = lambda a, b: jnp.all(a == b, axis=tuple(range(1, a.ndim)))
        shared = c.started & same(o[..., :-1], c.obs[..., 1:])
        depth = jnp.where(shared, jnp.minimum(c.depth + 1, stack - 1), 0)
        must_be_zero = older[None, :] < (stack - 1 - depth)[:, None]  # [N, S - 1]
        nonzero = jnp.any(o[..., :-1] != 0, axis=(1, 2))  # [N, S - 1]
        bad = jnp.any(must_be_zero & nonzero, -1) | ~same(nxt[..., :-1], o[..., 1:])
        carry = FrameCarry(o, depth, jnp.ones_like(c.started), c.mismatches + bad.sum().astype(jnp.int32))
        return carry, (o[..., -1], depth, nxt[..., -1])

    carry, (frames, depths, next_frames) = jax.lax.scan(step, carry, (obs, next_obs))
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    items = FrameItem(flat(frames), flat(depths), flat(actions), flat(rewards), flat(terminals), flat(next_frames))
    return items, carry


def sample_indices(state: ReplayState, key, shape, num_envs: int, stack: int):
    """Slots drawn uniformly with replacement from those whose stacks can be rebuilt: all filled slots,
    less the oldest ``(stack - 1) * num_envs`` of a full buffer (their envs' previous slots are gone)."""
    capacity, gone = capacity_of(state), (stack - 1) * num_envs
    full = state.size == capacity
    start = jnp.where(full, state.position + gone, 0)
    count = jnp.maximum(jnp.where(full, state.size - gone, state.size), 1)
    return (start + jax.random.randint(key, shape, 0, count)) % capacity


def rebuild(state: ReplayState, idx, num_envs: int, stack: int) -> Transition:
    """The stored transitions at slots ``idx`` (any shape) with their ``obs`` and ``next_obs`` stacks."""
    items, capacity = state.items, capacity_of(state)
    depth = items.depth[idx]

    def frame(back):  # the frame ``back`` steps before each slot's newest, zero past its depth
        f = items.frame[(idx - back * num_envs) % capacity]
        return jnp.where((back <= depth).reshape(*depth.shape, 1, 1), f, jnp.zeros_like(f))

    frames = [frame(back) for back in range(stack - 1, -1, -1)]  # oldest first
    obs = jnp.stack(frames, -1)
    next_obs = jnp.stack(frames[1:] + [items.next_frame[idx]], -1)
    return Transition(obs, items.action[idx], items.reward[idx], items.terminal[idx], next_obs,
                      jnp.ones(idx.shape, jnp.int32))


def config_problem(config) -> str | None:
    """Why DQN's ``config`` cannot use ``frame_replay`` (Atari's stacks, one-step transitions, uniform sampling,
    room for an iteration and the frames before it), or None."""
    if config.network != "nature_cnn" or config.n_step != 1 or config.prioritized:
        return ("frame_replay stores Atari's stacked frames once: it needs --network nature_cnn, --n-step 1 and "
                "no --prioritized. Use --no-frame-replay for the others.")
    need = config.steps_per_iteration + 3 * config.num_envs
    if config.buffer_size < need:
        return (f"buffer_size ({config.buffer_size}) must hold one iteration and 3 more steps per env with "
                f"frame_replay ({need}). Raise --buffer-size.")
    return None


def minibatches(state: ReplayState, carry: FrameCarry, key, shape, num_envs: int):
    """DQN's ``minibatches`` from this buffer: ``(transitions [*shape, ...], slots, unit weights)``."""
    stack = carry.obs.shape[-1]
    idx = sample_indices(state, key, shape, num_envs, stack)
    return rebuild(state, idx, num_envs, stack), idx, jnp.ones(shape)


def mismatches(carry) -> jax.Array:
    """The count of transitions stored that the layout could not give back (0 without frame replay)."""
    return (carry.mismatches if isinstance(carry, FrameCarry) else jnp.zeros(())).astype(jnp.float32)
