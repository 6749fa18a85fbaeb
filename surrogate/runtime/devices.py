"""Seeds across CPU devices, and the compile cache: how a program of one seed becomes a program of many.

Seeds are vmapped and sharded over host devices (``_jax_setup`` asks XLA for one CPU device per core;
measured in benchmarks/README.md).
"""
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from surrogate._jax_setup import FAST

_COMPILED = {}


def cached(key, build):
    """Compiled functions are reused across ``train`` calls with the same key (config, env, seeds, ...)."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def seed_mesh(num_seeds: int):
    """The largest set of CPU devices that divides the seeds evenly (both cores here)."""
    devices = jax.devices()
    n = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    return jax.sharding.Mesh(np.array(devices[:n]), ("seeds",))


def vmap_seeds(fn: Callable, num_seeds: int):
    """``vmap(fn)`` over a leading seed axis; with one seed, ``fn`` on the squeezed input (a vmap of
    size 1 costs compile time and nothing at run time)."""
    if num_seeds > 1:
        return jax.vmap(fn)
    return lambda *xs: jax.tree.map(lambda y: y[None], fn(*jax.tree.map(lambda y: y[0], xs)))


def over_seeds(fn: Callable, num_seeds: int, donate: bool = False, mesh=None):
    """``jit(vmap(fn))`` over a leading seed axis, sharded across CPU devices with ``shard_map``.
    ``mesh``: run every seed on all of its devices instead (``parts.on_two_devices``: one seed
    replicated on two devices that split each update between them).

    Returns a ``SeedSharded`` callable that places its input on the mesh first (letting the jitted
    call reshard single-device inputs implicitly has hung here on jax 0.10.2)."""
    if mesh is not None:
        spec = jax.sharding.PartitionSpec()
        # check_vma off: the devices' outputs are equal by construction (parts.take_from_devices)
        batched = jax.shard_map(vmap_seeds(fn, 1), mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    else:
        mesh, spec = seed_mesh(num_seeds), jax.sharding.PartitionSpec("seeds")
        batched = vmap_seeds(fn, num_seeds)
        if mesh.devices.size > 1:  # check_vma off: seeds share nothing, and values a seed's program makes from
            # constants (a scan's zero-initialised carry) would otherwise need marking as varying over seeds
            batched = jax.shard_map(batched, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    sharding = jax.sharding.NamedSharding(mesh, spec)
    return SeedSharded(jax.jit(batched, donate_argnums=(0,) if donate else (), compiler_options=FAST), sharding)


class SeedSharded(NamedTuple):
    jitted: Any
    sharding: Any

    def place(self, x):
        return jax.device_put(x, self.sharding)

    def __call__(self, x):
        return self.jitted(self.place(x))

    def lower(self, x):
        return self.jitted.lower(self.place(x))
