"""Raw step rate of the two implementations of ``surrogate.envs.make("ALE/Pong-v5")``'s preprocessing:
ale-py 0.12.1's C++ ``AtariVectorEnv`` (threads) against Gymnasium's ``AsyncVectorEnv`` (one process per
env) of ``AtariPreprocessing`` + FIRE reset + a 4-frame stack, both behind our ``AtariVector`` (random
actions, auto-resets included), plus ale-py's vector env bare (``gymnasium.make_vec``, its own
preprocessing and clipping, no adapter) to show what the adapter costs.

  python benchmarks/atari_envs.py                  # 8 envs, 4000 steps of the vector env each
  python benchmarks/atari_envs.py --quick          # a short check of the script (figures not written)

Writes benchmarks/results/atari_envs.json (``ale_vector_sps``, ``gymnasium_async_sps``,
``ale_vector_bare_sps``, ``speedup_ale_vector``, ``*_cpu_us_per_step``). Run it on a quiet machine: the
rates are CPU-bound.
"""
import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import numpy as np  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

from surrogate import envs  # noqa: E402


def rate(venv, steps: int, num_envs: int, warmup: int = 50) -> float:
    """Agent steps per second (all envs) over ``steps`` vector steps with uniformly random actions."""
    actions = np.random.default_rng(0).integers(0, 6, (warmup + steps, num_envs))
    for a in actions[:warmup]:
        venv.step(a)
    t = time.perf_counter()
    for a in actions[warmup:]:
        venv.step(a)
    return steps * num_envs / (time.perf_counter() - t)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its terminated, reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(env_id: str, num_envs: int, steps: int, threads: int) -> dict:
    """Steps/s of each implementation, and its CPU cost per agent step (``*_cpu_us_per_step``: every
    process and thread it ran, from creation to close, warm-up included), which a shared CPU disturbs
    less than the rate: an implementation that takes more cores gets more of a busy machine."""
    import gymnasium as gym

    out = {}
    for impl in ("ale_vector", "gymnasium_async"):
        kwargs = {"implementation": impl, **({"num_threads": threads} if impl == "ale_vector" else {})}
        cpu = cpu_seconds()
        venv = envs.make(env_id, **kwargs).vector(num_envs, seed=0)
        out[f"{impl}_sps"] = round(rate(venv, steps, num_envs))
        venv.close()
        out[f"{impl}_cpu_us_per_step"] = round(1e6 * (cpu_seconds() - cpu) / ((steps + 50) * num_envs), 1)
        print(f"{impl:16s} {out[f'{impl}_sps']:8,d} steps/s, {out[f'{impl}_cpu_us_per_step']} CPU us/step", flush=True)
    bare = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", num_threads=threads,
                        repeat_action_probability=0.0)
    bare.reset(seed=0)
    out["ale_vector_bare_sps"] = round(rate(bare, steps, num_envs))
    bare.close()
    print(f"{'bare AtariVectorEnv':16s} {out['ale_vector_bare_sps']:8,d} steps/s")
    out["speedup_ale_vector"] = round(out["ale_vector_sps"] / out["gymnasium_async_sps"], 2)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="ALE/Pong-v5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=4000, help="vector steps per implementation")
    p.add_argument("--threads", type=int, default=0, help="ale-py's threads (0: its default)")
    p.add_argument("--quick", action="store_true", help="200 steps, nothing written")
    a = p.parse_args()
    figures = measure(a.env, a.num_envs, 200 if a.quick else a.steps, a.threads)
    figures.update(env=a.env, num_envs=a.num_envs, threads=a.threads,
                   load_average=[round(x, 2) for x in os.getloadavg()])
    if not a.quick:
        import ale_py

        write_result(RESULTS / "atari_envs.json", figures, {"ale_py": ale_py.__version__})
    print(figures)


if __name__ == "__main__":
    main()
