"""Checkpoints: msgpack via ``flax.serialization`` (no pickle: loading one cannot run code),
written to a temporary file and renamed, so an interrupted save never damages the last one.

Arrays of 1 MiB or more (a replay buffer) are written after the msgpack header as raw bytes, straight
from the live arrays, and read back through a memory map: saving or loading a 13 GiB buffer takes
no second copy of it in memory (msgpack's would take two). Files without the ``MAGIC`` prefix are
the earlier all-msgpack checkpoints and load as before.

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
MAGIC = b"surrogate-ckpt-3"  # then the header's length (8 bytes, little-endian), the header, the raw arrays
EXTERNAL = 1 << 20  # arrays of at least this many bytes go after the header
ALIGN = 64


def atomic_write(path: Path, data) -> None:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` through a
    temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            data(f) if callable(data) else f.write(data)
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
        "state": serialization.to_state_dict(jax.device_get(state)),  # (on CPU, views of the live arrays)
        "history": {k: np.asarray(v) for k, v in history.items()},
    }
    big, offset = [], 0

    def external(x):  # a large array -> its place in the data section
        nonlocal offset
        if not isinstance(x, np.ndarray) or x.nbytes < EXTERNAL:
            return x
        big.append(np.ascontiguousarray(x))
        ref = {"__external__": np.asarray([offset, x.nbytes], np.int64), "dtype": x.dtype.str,
               "shape": np.asarray(x.shape, np.int64)}
        offset += -(-x.nbytes // ALIGN) * ALIGN
        return ref

    header = serialization.msgpack_serialize(jax.tree.map(external, payload))

    def write(f):
        f.write(MAGIC + len(header).to_bytes(8, "little") + header)
        f.write(b"\0" * (-f.tell() % ALIGN))
        for x in big:
            f.write(memoryview(x.reshape(-1)).cast("B"))
            f.write(b"\0" * (-x.nbytes % ALIGN))

    atomic_write(path, write)


def _read(path: Path) -> dict:
    """The payload, large arrays as read-only memory maps of the file (copied when put on a device)."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return serialization.msgpack_restore(path.read_bytes())  # an all-msgpack checkpoint
        header = f.read(int.from_bytes(f.read(8), "little"))
        start, size = -(-f.tell() // ALIGN) * ALIGN, path.stat().st_size
    payload = serialization.msgpack_restore(header)

    def internal(d):
        if isinstance(d, dict) and "__external__" in d:
            offset, nbytes = (int(v) for v in d["__external__"])
            shape, dtype = tuple(int(n) for n in d["shape"]), np.dtype(d["dtype"])
            if dtype.kind not in "biufc":  # plain numbers only: an object array would read pointers
                raise ValueError(f"an array of dtype {dtype} (only numbers are stored)")
            if start + offset + nbytes > size or int(np.prod(shape)) * dtype.itemsize != nbytes:
                raise ValueError("an array runs past the end of the file")
            return np.memmap(path, dtype, "r", start + offset, shape)
        return {k: internal(v) for k, v in d.items()} if isinstance(d, dict) else d

    return internal(payload)


def load(path: Path, template):
    """Restore ``(state, history, updates_done)``; ``template`` gives the structure (shapes are checked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}. Start a new run instead of --resume, or point to a run "
                              f"directory that has checkpoints/latest.msgpack.")
    try:
        payload = _read(path)
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
