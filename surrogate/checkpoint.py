"""Checkpoints: msgpack via ``flax.serialization`` (no pickle: loading one cannot run code),
written to a temporary file and renamed, so an interrupted save never damages the last one.

A checkpoint holds the learner's whole carried state (parameters, optimiser state,
normalisers, RNG keys, env state for JAX envs, update count) and the metrics history, so
a resumed run continues the same trajectory.
"""
import os
import tempfile
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from surrogate.errors import CheckpointError

FORMAT = 2  # 2: runtime.RunnerState (algo, env, key, iteration)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(path: Path, state, history: dict, updates_done: int) -> None:
    payload = {
        "format": FORMAT,
        "updates_done": int(updates_done),
        "state": serialization.to_state_dict(jax.device_get(state)),
        "history": {k: np.asarray(v) for k, v in history.items()},
    }
    atomic_write(path, serialization.msgpack_serialize(payload))


def load(path: Path, template):
    """Restore ``(state, history, updates_done)``; ``template`` gives the structure (shapes are checked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}. Start a new run instead of --resume, or point to a run "
                              f"directory that has checkpoints/latest.msgpack.")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        if payload.get("format") != FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {FORMAT}")
        state = serialization.from_state_dict(template, payload["state"])
        history = {k: np.asarray(v) for k, v in payload["history"].items()}
        updates_done = int(payload["updates_done"])
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"Checkpoint {path} is corrupt or was written by another version ({e}). "
                              f"Start a new run, or restore the file from a backup.") from None
    want = jax.tree.map(lambda x: (tuple(np.shape(x)), np.dtype(x.dtype)), template)
    got = jax.tree.map(lambda x: (tuple(np.shape(x)), np.dtype(np.asarray(x).dtype)), state)
    if want != got:
        raise CheckpointError(f"Checkpoint {path} does not match this run's configuration (array shapes differ). "
                              f"Resume with the configuration saved in the run directory.")
    return state, history, updates_done
