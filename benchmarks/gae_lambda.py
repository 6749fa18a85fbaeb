"""The GAE paper's lambda sweep (Schulman et al. 2016, sections 6.1-6.2): TRPO with GAE(gamma, lambda) for
lambda in {0, 0.9, 0.96, 0.99, 1}, on cart-pole (CartPole-v1, JAX backend, many seeds vmapped) and on a
MuJoCo task (Hopper-v5, host backend), with the value function fitted by Adam regression and by the
paper's trust-region regression (section 5).

Score per run: the mean return over all training episodes (the area under the learning curve, "learns
fastest"), and the mean return over the last 10% of training. Writes benchmarks/results/gae_lambda.json
and benchmarks/results/gae_lambda.png; MuJoCo runs one file each under benchmarks/results/gae_lambda/.

  python benchmarks/gae_lambda.py                 # cart-pole 8 seeds x 100k, Hopper 2 seeds x 200k steps
  python benchmarks/gae_lambda.py --skip-done     # resume the MuJoCo runs
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import trpo  # noqa: E402
from surrogate.run import episode_curve  # noqa: E402

LAMBDAS = [0.0, 0.9, 0.96, 0.99, 1.0]
FITS = ["adam", "trust_region"]
OUT = RESULTS / "gae_lambda"


def scores(history, seeds: int) -> dict:
    curve = episode_curve(history)  # [seeds, updates]
    n = curve.shape[1]
    return {"auc_mean_return": float(np.nanmean(curve)), "final_mean_return": float(np.nanmean(curve[:, -max(1, n // 10):])),
            "auc_per_seed": [float(np.nanmean(c)) for c in curve], "seeds": seeds,
            "curve_mean_over_seeds": [None if not np.isfinite(x) else round(float(x), 1) for x in np.nanmean(curve, 0)]}


def cartpole(seeds: int, steps: int) -> dict:
    out = {}
    for fit in FITS:
        for lam in LAMBDAS:
            cfg = dataclasses.replace(trpo.PRESETS["cartpole"], gae_lambda=lam, vf_fit=fit, total_steps=steps)
            res = trpo.ALGO.train(cfg, envs.make(cfg.env), jax.random.PRNGKey(0), seeds=seeds)
            out[f"{fit}/{lam}"] = s = scores(res.history, seeds)
            print(f"CartPole-v1 {fit:12s} lambda {lam:4}: mean over training {s['auc_mean_return']:6.1f}, "
                  f"last 10% {s['final_mean_return']:6.1f}", flush=True)
    return out


def mujoco(task: str, seeds: list, steps: int, skip_done: bool, summary_only: bool = False) -> dict:
    out = {}
    for fit in FITS:
        for lam in LAMBDAS:
            runs = []
            for seed in seeds:
                path = OUT / f"{task}-{fit}-lambda{lam}-seed{seed}.json"
                if summary_only and not path.is_file():
                    continue
                if not (skip_done and path.is_file()):
                    cfg = dataclasses.replace(trpo.PRESETS["mujoco"], env=task, gae_lambda=lam, vf_fit=fit, total_steps=steps)
                    res = trpo.ALGO.train(cfg, envs.make(task), jax.random.PRNGKey(seed))
                    write_result(path, {"task": task, "fit": fit, "lambda": lam, "seed": seed,
                                        **scores(res.history, 1), "config": dataclasses.asdict(cfg)})
                runs.append(json.loads(path.read_text()))
            if not runs:
                continue
            auc = [r["auc_mean_return"] for r in runs]
            curves = np.array([[np.nan if x is None else x for x in r["curve_mean_over_seeds"]] for r in runs])
            out[f"{fit}/{lam}"] = {"auc_mean_return": float(np.mean(auc)), "auc_per_seed": auc, "seeds": len(runs),
                                   "final_mean_return": float(np.mean([r["final_mean_return"] for r in runs])),
                                   "curve_mean_over_seeds": [None if not np.isfinite(x) else round(float(x), 1)
                                                             for x in np.nanmean(curves, 0)]}
            print(f"{task} {fit:12s} lambda {lam:4}: mean over training {np.mean(auc):7.1f} ({len(runs)} seeds)", flush=True)
    return out


def plot(results: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results)
    fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 8), squeeze=False)
    for col, task in enumerate(tasks):
        for lam in LAMBDAS:
            if f"adam/{lam}" not in results[task]:
                continue
            c = results[task][f"adam/{lam}"]["curve_mean_over_seeds"]
            axes[0, col].plot([np.nan if x is None else x for x in c], label=f"lambda={lam}")
        axes[0, col].set(title=f"{task}: TRPO + GAE, value fit by Adam", xlabel="update", ylabel="mean episode return")
        axes[0, col].legend()
        width = 0.38
        for i, fit in enumerate(FITS):
            auc = [results[task].get(f"{fit}/{lam}", {}).get("auc_mean_return", np.nan) for lam in LAMBDAS]
            axes[1, col].bar(np.arange(len(LAMBDAS)) + (i - 0.5) * width, auc, width, label=f"value fit: {fit}")
        axes[1, col].set_xticks(range(len(LAMBDAS)), [str(x) for x in LAMBDAS])
        axes[1, col].set(xlabel="lambda", ylabel="mean return over training", title=f"{task}: speed of learning")
        axes[1, col].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cartpole-seeds", type=int, default=8)
    p.add_argument("--cartpole-steps", type=int, default=100_000)
    p.add_argument("--task", default="Hopper-v5")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--skip-done", action="store_true")
    p.add_argument("--summary-only", action="store_true",
                   help="no training: cart-pole from the last gae_lambda.json, MuJoCo from the files that exist")
    a = p.parse_args()
    if a.summary_only:
        results = {"CartPole-v1": json.loads((RESULTS / "gae_lambda.json").read_text())["results"]["CartPole-v1"]}
    else:
        results = {"CartPole-v1": cartpole(a.cartpole_seeds, a.cartpole_steps)}
    results[a.task] = mujoco(a.task, a.seeds, a.steps, a.skip_done, a.summary_only)
    write_result(RESULTS / "gae_lambda.json", {"results": results})  # cart-pole kept if MuJoCo is cut off
    figures = {"results": results}
    for task, r in results.items():
        best = {fit: max((lam for lam in LAMBDAS if f"{fit}/{lam}" in r), key=lambda lam: r[f"{fit}/{lam}"]["auc_mean_return"])
                for fit in FITS if any(f"{fit}/{lam}" in r for lam in LAMBDAS)}
        figures[f"{task}_best_lambda"] = best
        figures[f"{task}_intermediate_lambda_fastest"] = {fit: 0.0 < lam < 1.0 for fit, lam in best.items()}
    write_result(RESULTS / "gae_lambda.json", figures)
    plot(results, RESULTS / "gae_lambda.png")
    print(json.dumps({k: v for k, v in figures.items() if k != "results"}, indent=1))


if __name__ == "__main__":
    main()
