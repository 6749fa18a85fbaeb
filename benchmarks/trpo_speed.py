"""TRPO training speed against sb3-contrib 2.9.2 TRPO (torch CPU) at sb3-contrib's defaults, in one run.

Both sides use the same hyperparameters (our preset ``sb3-contrib``: one env, n_steps 2048, 15 CG
iterations, damping 0.1, line search 10 x 0.8, max KL 0.01, value function 10 epochs of minibatch 128
at lr 1e-3, 64-64 tanh networks). sb3-contrib runs in the peers' virtual environment
(``benchmarks/peers/sb3c_trpo.py``; once with 1 torch thread and once with torch's default, the faster
kept), after a warm-up rollout. Figures:

* ``speedup_vs_sb3c_jax``: ours on Pendulum-v1 with the JAX backend (the whole run one jitted scan;
  compile excluded: the fastest of three runs after one that compiles) vs sb3-contrib on Gymnasium's
  Pendulum-v1.
  Target >= 20.
* ``speedup_vs_sb3c_host``: ours on Hopper-v5 with the host backend (Gymnasium MuJoCo) vs
  sb3-contrib on Hopper-v5. Target >= 2.5.
* ``host_fraction_of_raw``: that training rate over the raw Hopper-v5 step rate (one env, random
  actions, resets included), measured in this script before and after. Target >= 0.7.

  python benchmarks/trpo_speed.py [--peers-python .venv-peers/bin/python]   # ~3 minutes; quiet machine
"""
import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ORIG_ENV = dict(os.environ)
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, run_json, write_result  # noqa: E402
from mujoco_common import raw_rate, training_rate  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import trpo  # noqa: E402


def sb3c(peers_py: Path, env_id: str, total: int) -> dict:
    runs = [run_json([peers_py, HERE / "peers" / "sb3c_trpo.py", "--env", env_id, "--total", total, "--threads", t],
                     ORIG_ENV, f"sb3-contrib TRPO on {env_id}") for t in ("1", "default")]
    best = max(runs, key=lambda r: r["sps"])
    return {**best, "sps_by_threads": {str(r["threads"]): r["sps"] for r in runs}}


def ours_jax(env_id: str, updates: int, repeats: int = 3) -> dict:
    """Steps/s of one seed, compile excluded: the fastest of ``repeats`` timed runs after a first one that
    compiles (noise on a shared CPU only slows a run down; the median is kept beside it)."""
    config = dataclasses.replace(trpo.PRESETS["sb3-contrib"], env=env_id, total_steps=updates * 2048)
    env = envs.make(env_id)
    jax.block_until_ready(trpo.ALGO.train(config, env, jax.random.PRNGKey(0)).state)  # compiles
    rates = []
    for i in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(trpo.ALGO.train(config, env, jax.random.PRNGKey(1 + i)).state)
        rates.append(config.num_updates * config.batch_size / (time.perf_counter() - t))
    return {"best": max(rates), "median": float(np.median(rates)), "all": rates}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--quick", action="store_true", help="smoke test: fewer steps")
    p.add_argument("--out", default=str(RESULTS / "trpo_speed.json"))
    a = p.parse_args()
    peers_py = Path(a.peers_python)
    if not peers_py.exists():
        sys.exit(f"peers python {peers_py} not found: run `make bench-peers` or pass --peers-python")
    sb3c_steps = 4096 if a.quick else 20480
    f = {}
    print("sb3-contrib TRPO, Pendulum-v1 and Hopper-v5 ...", flush=True)
    peer_pendulum = sb3c(peers_py, "Pendulum-v1", sb3c_steps)
    peer_hopper = sb3c(peers_py, "Hopper-v5", sb3c_steps)
    print("ours, Pendulum-v1 (JAX backend) ...", flush=True)
    jax_runs = ours_jax("Pendulum-v1", 20 if a.quick else 50)
    jax_sps = jax_runs["best"]
    print("ours, Hopper-v5 (host backend) and the raw Hopper-v5 rate ...", flush=True)
    raw_before = raw_rate("Hopper-v5")
    host_sps = training_rate(trpo, dataclasses.replace(trpo.PRESETS["sb3-contrib"], env="Hopper-v5"),
                             updates=5 if a.quick else 20)
    raw = (raw_before + raw_rate("Hopper-v5")) / 2
    pendulum_raw = raw_rate("Pendulum-v1")
    f.update(speedup_vs_sb3c_jax=jax_sps / peer_pendulum["sps"], speedup_vs_sb3c_host=host_sps / peer_hopper["sps"],
             host_fraction_of_raw=host_sps / raw, ours_pendulum_jax_sps=jax_sps, ours_pendulum_jax_runs=jax_runs, ours_hopper_host_sps=host_sps,
             sb3c_pendulum_sps=peer_pendulum["sps"], sb3c_hopper_sps=peer_hopper["sps"],
             sb3c_pendulum_fraction_of_raw=peer_pendulum["sps"] / pendulum_raw,
             sb3c_hopper_fraction_of_raw=peer_hopper["sps"] / raw, raw_hopper_sps=raw,
             raw_pendulum_gymnasium_sps=pendulum_raw, sb3c_runs={"pendulum": peer_pendulum, "hopper": peer_hopper},
             load_avg=os.getloadavg())
    write_result(Path(a.out), f, extra_versions={"peers": peer_pendulum["versions"]})
    rows = [("Pendulum-v1, ours JAX vs sb3-contrib", jax_sps, peer_pendulum["sps"], f["speedup_vs_sb3c_jax"], ">= 20x"),
            ("Hopper-v5, ours host vs sb3-contrib", host_sps, peer_hopper["sps"], f["speedup_vs_sb3c_host"], ">= 2.5x")]
    print(f"\n{'figure':40s} {'ours':>10s} {'sb3-contrib':>12s} {'ratio':>8s} {'target':>8s}")
    for name, o, s, r, t in rows:
        print(f"{name:40s} {o:10,.0f} {s:12,.0f} {r:7.1f}x {t:>8s}")
    print(f"{'Hopper-v5 host, fraction of raw env rate':40s} {host_sps:10,.0f} {raw:12,.0f} "
          f"{f['host_fraction_of_raw']:7.0%} {'>= 70%':>8s}")
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
