"""DDPG on Pendulum-v1: training speed against Stable-Baselines3 2.9.2's DDPG at its defaults, in one run.

Ours: preset ``sb3`` (SB3's DDPG defaults: 400-300 nets, batch 256, one gradient step per env step, 100
uniform random steps first) on gymnax Pendulum-v1, the whole run one compiled program in a fresh process
(``--worker``, persistent compile cache off): compile, one warm-up call, ``--repeats`` timed calls, the
fastest counting (noise on a shared CPU only slows things down), the median kept beside it. Steps/s counts
only the steps after ``learning_starts`` (the random ones before are cheaper), so it is conservative.
SB3 (``peers/sb3_ddpg.py`` in ``--peers-python``'s venv, gymnasium's Pendulum-v1): ``learn()`` timed after
an untimed ``learn()`` of its warm-up, with 1 torch thread and with torch's default, the faster counting.

  python benchmarks/ddpg_speed.py                           # quiet machine; writes results/ddpg_speed.json
  python benchmarks/ddpg_speed.py --quick --out /tmp/d.json  # smoke test: tiny runs, not a measurement
"""
import os

ORIG_ENV = dict(os.environ)  # before `import surrogate` adds XLA_FLAGS: what subprocesses start from

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, run_json, time_whole_run, write_result  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import ddpg  # noqa: E402

PEERS = HERE / "peers"


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def our_speed(total: int, repeats: int) -> dict:
    """Preset ``sb3`` for ``learning_starts + total`` steps as one program: compile time, warm steps/s of the
    ``total`` training steps, the final greedy return (20 episodes)."""
    config = dataclasses.replace(ddpg.PRESETS["sb3"], total_steps=ddpg.PRESETS["sb3"].learning_starts + total)
    env = envs.make("Pendulum-v1")
    run = time_whole_run(ddpg.ALGO, config, env, 1, repeats)
    warm = run["times"][1:]
    params = ddpg.ALGO.evaluated_policy(config, jax.tree.map(lambda x: x[0], run["out"].algo))
    ret = float(np.mean(ddpg.ALGO.evaluate(config, env, params, None, jax.random.PRNGKey(10_000), 20)))
    return dict(lib="surrogate", preset="sb3", total=total, steps_per_seed=run["steps_per_seed"],
                compile_s=run["compile_s"], first_call_s=run["times"][0], warm_call_s=warm, sps=total / min(warm),
                sps_median=total / float(np.median(warm)), final_eval_mean=ret, load=os.getloadavg())


def measure(a, peers_py: Path) -> dict:
    ours_env = {**ORIG_ENV, "SURROGATE_COMPILE_CACHE": "0"}
    r = {}
    log(f"ours, preset sb3, {a.total} training steps")
    r["ours"] = run_json([sys.executable, __file__, "--worker", "--total", a.total, "--repeats", a.repeats], ours_env,
                         "ours")
    for threads in ("1", "default"):
        log(f"SB3 DDPG, {a.total} steps after {a.warmup}, torch threads {threads}")
        extra = dict(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") if threads == "1" else {}
        peer_env = {k: v for k, v in ORIG_ENV.items() if k != "JAX_COMPILATION_CACHE_DIR"} | extra
        r[f"sb3_threads_{threads}"] = run_json([peers_py, PEERS / "sb3_ddpg.py", threads, 0, a.total, a.warmup],
                                               peer_env, "sb3")
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: tiny runs")
    p.add_argument("--total", type=int, default=None, help="timed training steps per side (default 5000)")
    p.add_argument("--warmup", type=int, default=None, help="SB3's untimed steps before (default 1000)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--out", default=str(RESULTS / "ddpg_speed.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.total = a.total or (300 if a.quick else 5_000)
    a.warmup = a.warmup or (200 if a.quick else 1_000)
    a.repeats = a.repeats or (1 if a.quick else 2)
    if a.worker:
        print(json.dumps(our_speed(a.total, a.repeats)), flush=True)
        return
    peers_py = Path(a.peers_python)
    if not peers_py.exists():
        sys.exit(f"peers python {peers_py} not found: run `make bench-peers` or pass --peers-python")
    t0 = time.perf_counter()
    r = measure(a, peers_py)
    sb3 = max((r["sb3_threads_1"], r["sb3_threads_default"]), key=lambda x: x["sps"])
    f = dict(speedup_vs_sb3_sps=r["ours"]["sps"] / sb3["sps"], our_sps=r["ours"]["sps"],
             our_sps_median=r["ours"]["sps_median"], sb3_sps=sb3["sps"],
             sb3_sps_torch_threads_1=r["sb3_threads_1"]["sps"],
             sb3_sps_torch_threads_default=r["sb3_threads_default"]["sps"], compile_s=r["ours"]["compile_s"],
             final_return=r["ours"]["final_eval_mean"], sb3_final_return=sb3["final_eval_mean"],
             settings=dict(quick=a.quick, timed_steps=a.total, sb3_warmup=a.warmup, repeats=a.repeats,
                           config=dataclasses.asdict(ddpg.PRESETS["sb3"]),
                           sps_statistic="ours: fastest warm call of the compiled run, training steps only; SB3: "
                                         "its timed learn() call, the faster torch thread setting"),
             raw=r, benchmark_wall_s=time.perf_counter() - t0)
    write_result(Path(a.out), f, extra_versions={"peers": sb3["versions"]})
    print(f"\nDDPG, Pendulum-v1, SB3 defaults: ours {f['our_sps']:.0f} steps/s, SB3 {f['sb3_sps']:.0f} steps/s: "
          f"{f['speedup_vs_sb3_sps']:.2f}x (target >= 10x); final returns {f['final_return']:.0f} / "
          f"{f['sb3_final_return']:.0f}\nwrote {a.out}")


if __name__ == "__main__":
    main()
