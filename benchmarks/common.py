"""Helpers shared by benchmark scripts: provenance of results files and table printing."""
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def time_whole_run(algo, config, env, seeds: int, repeats: int) -> dict:
    """A whole training run of ``seeds`` seeds as the JAX driver's one compiled program, timed as the peer
    scripts time theirs: the host-made initial state (``init_s``), the cold compile (``compile_s``) and
    ``1 + repeats`` calls (``times``; the first a warm-up). Also the state it starts from (``runner``) and
    the last call's final state (``out``)."""
    import jax
    import jax.numpy as jnp
    from surrogate.runtime import jax_driver

    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.zeros(())))  # backend start-up, not compile
    t = time.perf_counter()  # the initial state: made on the host, nothing compiled for an MLP
    runner = jax.block_until_ready(jax_driver.initial_state(algo, config, env, keys))
    init_s = time.perf_counter() - t
    iterations = algo.num_iterations(config)
    program = jax_driver.train_program(algo, config, env, seeds, iterations)
    runner = jax.block_until_ready(program.place(runner))
    t = time.perf_counter()
    compiled = program.lower(runner).compile()
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(1 + repeats):
        t = time.perf_counter()
        out, _ = jax.block_until_ready(compiled(runner))
        times.append(time.perf_counter() - t)
    return dict(runner=runner, out=out, init_s=init_s, compile_s=compile_s, times=times,
                steps_per_seed=iterations * algo.steps_per_iteration(config, env))


def machine() -> dict:
    from surrogate.run import cpu_model

    cpu = cpu_model()
    gpu = None
    try:
        gpu = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "gpu": gpu, "python": platform.python_version()}


def versions(extra: dict | None = None) -> dict:
    import jax

    import surrogate

    v = {"surrogate": surrogate.__version__, "jax": jax.__version__}
    for mod in ("flax", "optax", "gymnax", "gymnasium", "mujoco"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:
            pass
    v.update(extra or {})
    return v


def write_result(path: Path, figures: dict, extra_versions: dict | None = None) -> dict:
    """Write ``figures`` plus command/date/machine/versions atomically to ``path``."""
    from surrogate.checkpoint import atomic_write

    out = dict(figures)
    out.update(command=" ".join([Path(sys.executable).name, *sys.argv]), date=time.strftime("%Y-%m-%d %H:%M:%S"),
               machine=machine(), versions=versions(extra_versions))
    atomic_write(Path(path), (json.dumps(out, indent=2) + "\n").encode())
    return out


def last_json(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def run_json(cmd: list, env: dict, what: str) -> dict:
    """Run ``cmd`` (from the repository root) and return the last JSON line it printed."""
    proc = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, cwd=RESULTS.parent.parent)
    if proc.returncode:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return last_json(proc.stdout)
