"""TRPO on Gymnasium MuJoCo for 1M steps (preset ``mujoco``: OpenAI Baselines' trpo_mpi settings, the
TRPO paper's step: max KL 0.01, 10 CG iterations), several seeds, beside PPO from this library and
published TRPO numbers.

Writes one file per task x seed to benchmarks/results/trpo_mujoco/<task>-seed<k>.json (a run cut off
loses only what was in flight), then the summary benchmarks/results/trpo_mujoco.json. PPO's column is
read from benchmarks/results/ppo_mujoco/ (``benchmarks/ppo_mujoco.py``: same tasks, steps, seeds and
score, the last 100 training episodes).

  python benchmarks/trpo_mujoco.py                         # 3 tasks x 3 seeds, then the summary
  python benchmarks/trpo_mujoco.py --tasks Hopper-v5 --seeds 0 1 2 --skip-done
  python benchmarks/trpo_mujoco.py --summary-only
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import numpy as np  # noqa: E402
from common import RESULTS, write_result  # noqa: E402
from mujoco_common import run_one  # noqa: E402

from surrogate.algos import trpo  # noqa: E402

TASKS = ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"]
OUT = RESULTS / "trpo_mujoco"
# TRPO (64-64 networks, the default settings) in Henderson et al. 2018, "Deep Reinforcement Learning that
# Matters", Table 1, as quoted by PFRL's TRPO reproduction README: 2M steps, v1 tasks, mean +- std. error.
# The TRPO paper (Table 2: 1M steps per *iteration*) and the PPO paper (Figure 3) give no 1M-step table.
HENDERSON_2M = {"Hopper": (2828, 70), "HalfCheetah": (205, 256), "Walker2d": None}


def scores(folder: Path) -> dict:
    rows = {}
    for f in sorted(folder.glob("*.json")):
        d = json.loads(f.read_text())
        rows.setdefault(d["task"].split("-")[0], []).append(d["final_return_last100_train_episodes"])
    return {k: np.array(v) for k, v in rows.items()}


def summarize():
    ours, ppo = scores(OUT), scores(RESULTS / "ppo_mujoco")
    figures = {}
    print(f"{'task':12s} {'TRPO (ours, 1M)':>20s} {'PPO (ours, 1M)':>20s} {'TRPO, Henderson 2018 (2M)':>27s}")
    for task, r in ours.items():
        p, h = ppo.get(task), HENDERSON_2M.get(task)
        figures.update({f"{task}_trpo_return_mean": round(float(r.mean()), 1), f"{task}_trpo_return_std": round(float(r.std()), 1),
                        f"{task}_trpo_seeds": len(r),
                        f"{task}_ppo_return_mean": None if p is None else round(float(p.mean()), 1),
                        f"{task}_ppo_seeds": 0 if p is None else len(p),
                        f"{task}_henderson2018_trpo_2M": h[0] if h else None})
        ppo_txt = "-" if p is None else f"{p.mean():.0f} +- {p.std():.0f} ({len(p)})"
        print(f"{task:12s} {r.mean():11.0f} +- {r.std():4.0f} ({len(r)}) {ppo_txt:>20s} "
              f"{(f'{h[0]} +- {h[1]}' if h else 'n/a'):>27s}")
    write_result(RESULTS / "trpo_mujoco.json", figures)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--skip-done", action="store_true", help="skip task x seed files that already exist")
    a = p.parse_args()
    if not a.summary_only:
        for seed in a.seeds:
            for task in a.tasks:
                out = OUT / f"{task}-seed{seed}.json"
                if a.skip_done and out.is_file():
                    continue
                config = dataclasses.replace(trpo.PRESETS["mujoco"], env=task, total_steps=a.total_steps)
                run_one(trpo, config, seed, out)
    summarize()


if __name__ == "__main__":
    main()
