"""PPO on Gymnasium MuJoCo for 1M steps with the paper's hyperparameters (Table 3), several seeds.

Writes one file per task x seed to benchmarks/results/ppo_mujoco/<task>-seed<k>.json (a run cut
off loses only what was in flight), then the summary benchmarks/results/ppo_mujoco.json with
final returns beside CleanRL's published 1M-step numbers and, measured in this script,
training steps/s as a fraction of the raw environment step rate.

  python benchmarks/ppo_mujoco.py                       # 3 tasks x 3 seeds, then the summary
  python benchmarks/ppo_mujoco.py --tasks Hopper-v5 --seeds 0 1 2
  python benchmarks/ppo_mujoco.py --summary-only        # rebuild the summary from per-seed files
  python benchmarks/ppo_mujoco.py --speed-only          # only the steps/s fraction (quiet machine!)
  python benchmarks/ppo_mujoco.py --no-speed --skip-done  # train missing task x seed files only
  python benchmarks/ppo_mujoco.py --separate-updates     # the same with separate actor/critic updates
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import numpy as np  # noqa: E402
from common import RESULTS, write_result  # noqa: E402
from mujoco_common import raw_rate, run_one, training_rate  # noqa: E402

from surrogate.algos import ppo  # noqa: E402

# CleanRL ppo_continuous_action, v4 tasks, 1M steps, 3 seeds (../shared/paper-tables.md).
CLEANRL = {"HalfCheetah": (1443, 46), "Hopper": (2383, 272), "Walker2d": (2288, 572)}
TASKS = ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"]
NAME = "ppo_mujoco"  # with --separate-updates: ppo_mujoco_separate_updates (files and summary)
OUT = RESULTS / NAME
OVERRIDES = {}  # changes to the mujoco preset (--separate-updates)


def speed(task: str, updates: int = 20) -> dict:
    """Training steps/s against the raw env rate (measured before and after), same process."""
    config = dataclasses.replace(ppo.PRESETS["mujoco"], env=task, **OVERRIDES)
    raw_before = raw_rate(task)
    train_sps = training_rate(ppo, config, updates)
    raw = (raw_before + raw_rate(task)) / 2
    return {"train_sps": round(train_sps), "raw_env_sps": round(raw), "fraction_of_raw": round(train_sps / raw, 3)}


def bootstrap_ci(x: np.ndarray, level: float = 0.95, resamples: int = 10_000) -> tuple:
    """Percentile bootstrap interval of the mean over seeds (resampling seeds with replacement;
    fixed resampling seed, so a summary rebuilt from the same files gives the same interval)."""
    means = np.random.default_rng(0).choice(x, (resamples, len(x))).mean(axis=1)
    return tuple(np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))


def summarize(speed_figures: dict | None):
    rows = {}
    for f in sorted(OUT.glob("*.json")):
        d = json.loads(f.read_text())
        rows.setdefault(d["task"], []).append(d)
    figures = {}
    print(f"{'task':16s} {'seeds':>5s} {'ours (last 100 ep.)':>22s} {'ours (det. eval)':>18s} {'CleanRL 1M':>14s}")
    for task, runs in rows.items():
        name = task.split("-")[0]
        last = np.array([r["final_return_last100_train_episodes"] for r in runs])
        det = np.array([r["final_eval_return_10ep_deterministic"] for r in runs])
        ref = CLEANRL.get(name)
        figures[f"{name}_return_mean"] = round(float(last.mean()), 1)
        figures[f"{name}_return_std"] = round(float(last.std()), 1)
        figures[f"{name}_return_median"] = round(float(np.median(last)), 1)
        figures[f"{name}_return_ci95"] = [round(float(x), 1) for x in bootstrap_ci(last)]
        figures[f"{name}_eval_return_mean"] = round(float(det.mean()), 1)
        figures[f"{name}_seeds"] = len(runs)
        figures[f"{name}_cleanrl_return"] = ref[0] if ref else None
        print(f"{task:16s} {len(runs):5d} {last.mean():14.0f} +- {last.std():4.0f} {det.mean():12.0f} +- {det.std():4.0f}"
              f" {ref[0] if ref else '-':>8} +- {ref[1] if ref else '-'}")
    previous = RESULTS / f"{NAME}.json"
    if speed_figures is None and previous.is_file():  # keep the last speed measurement
        old = json.loads(previous.read_text())
        speed_figures = {k: v for k, v in old.items() if k.startswith("speed_")}
    figures.update(speed_figures or {})
    write_result(previous, figures)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--speed-only", action="store_true")
    p.add_argument("--skip-done", action="store_true", help="skip task x seed files that already exist")
    p.add_argument("--no-speed", action="store_true", help="train only; keep the last speed measurement")
    p.add_argument("--separate-updates", action="store_true",
                   help="the preset with separate actor/critic updates; results under ppo_mujoco_separate_updates")
    a = p.parse_args()
    if a.separate_updates:
        global NAME, OUT
        NAME, OUT = "ppo_mujoco_separate_updates", RESULTS / "ppo_mujoco_separate_updates"
        OVERRIDES["separate_updates"] = True
    speed_figures = None
    if a.speed_only or not (a.summary_only or a.no_speed):
        s = speed("Hopper-v5")
        speed_figures = {f"speed_{k}": v for k, v in s.items()}
        speed_figures["speed_task"] = "Hopper-v5"
        speed_figures["speed_date"] = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"Hopper-v5: training {s['train_sps']} steps/s = {s['fraction_of_raw']:.0%} of raw {s['raw_env_sps']} steps/s")
    if not (a.summary_only or a.speed_only):
        for task in a.tasks:
            for seed in a.seeds:
                if a.skip_done and (OUT / f"{task}-seed{seed}.json").is_file():
                    continue
                config = dataclasses.replace(ppo.PRESETS["mujoco"], env=task, total_steps=a.total_steps, **OVERRIDES)
                run_one(ppo, config, seed, OUT / f"{task}-seed{seed}.json")
    summarize(speed_figures)


if __name__ == "__main__":
    main()
