"""Process-wide JAX settings, applied once when `surrogate` is first imported.

* Host devices: XLA sees one CPU device unless told otherwise. Seeds are sharded
  across devices (measured in benchmarks/README.md), so before JAX is first
  imported we ask for one host device per core. Set ``SURROGATE_HOST_DEVICES=1`` (or
  your own ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``) to opt out.
* Persistent compilation cache in the user's cache directory, so a second run of the
  same configuration does not compile again. ``SURROGATE_COMPILE_CACHE=0`` turns it off;
  ``SURROGATE_CACHE_DIR`` moves it.
"""
import os
import sys


def _host_device_flag():
    if "jax" in sys.modules:  # too late to change the device count
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    n = os.environ.get("SURROGATE_HOST_DEVICES") or str(min(os.cpu_count() or 1, 8))
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(n)}".strip()


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.environ.get("SURROGATE_CACHE_DIR", os.path.join(base, "surrogate", "jax"))


def set_compile_cache(enabled: bool) -> None:
    """Turn JAX's persistent compilation cache on (in `cache_dir()`) or off."""
    import jax

    if enabled:
        jax.config.update("jax_compilation_cache_dir", cache_dir())
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    else:
        jax.config.update("jax_compilation_cache_dir", None)


# XLA compiler options per jitted function (the measurements: benchmarks/README.md, "Measurements behind
# the code"): LLVM optimisation level 1 compiles faster than the default 3 at the same run speed; level 0
# compiles faster still but runs slower, so it is only for run-once code (evaluation, the Nature-CNN
# initialiser), which also skips XLA:CPU's fusion emitters.
FAST = {"xla_backend_optimization_level": 1}
RUN_ONCE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def setup():
    _host_device_flag()
    set_compile_cache(os.environ.get("SURROGATE_COMPILE_CACHE", "1") != "0")
