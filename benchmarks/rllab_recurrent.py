"""Recurrent TRPO (``recurrent_trpo``: GRU of 32 with the previous action as input, rllab's linear baseline) on
the partially observed rllab tasks (Duan et al. 2016, Table 1), in short runs beside the paper's TRPO cells.

The paper's runs: 300 iterations of 50k steps (500 envs x 100-step horizon), 5 seeds, and its metric, the
average undiscounted return over all trajectories of all training iterations. Here, by default, 20
iterations of 10k steps (100 envs x 100 steps: 1/75 of the paper's steps), ``--seeds`` seeds (2) trained
together, TRPO max KL 0.1 (the first value of the paper's grid), gamma 0.99, lambda 1. Per task:

* ``<task>_all_trajectories``: the paper's metric over this short run (mean over seeds), and per seed;
* ``<task>_last_iteration``: the average return of the episodes that ended in the last iteration;
* ``<task>_paper_trpo``: the paper's TRPO cell (../shared/paper-tables.md, Table 1, TRPO column);
* with ``--control``: the same for TRPO with the paper's MLP (100-50-25 tanh; no memory), ``<task>_mlp_*``.

Not comparable one to one: the paper's metric averages 300 iterations, most of them after learning; a short
run's average is dominated by its early iterations. The last iteration says where a short run got to.

  python benchmarks/rllab_recurrent.py                      # the 3 tasks of issue 27's question, ~2 min
  python benchmarks/rllab_recurrent.py --tasks all --control  # Table 1's six, GRU and MLP: ~9 min on 2 shared cores
"""
import argparse
import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import recurrent_trpo, trpo  # noqa: E402

PAPER_TRPO = {"AcrobotSwingUp-rllab-LS": -83.3, "CartPoleBalancing-rllab-NO": 606.2, "CartPoleSwingUp-rllab-NO": 10.4,
              "CartPoleBalancing-rllab-SI": 980.3, "MountainCar-rllab-SI": -61.6, "AcrobotSwingUp-rllab-SI": -170.9}
DEFAULT_TASKS = ("CartPoleBalancing-rllab-NO", "CartPoleBalancing-rllab-SI", "AcrobotSwingUp-rllab-LS")


def returns(history):
    """``(all trajectories, last iteration)`` average returns per seed from a run's history."""
    total, count = history["episode_return_sum"], history["episode_count"]  # [seeds, iterations]
    return total.sum(1) / np.maximum(count.sum(1), 1), total[:, -1] / np.maximum(count[:, -1], 1)


def run(algo, config, task: str, seeds: int):
    env = envs.make(task)
    result = algo.train(dataclasses.replace(config, env=task), env, jax.random.PRNGKey(0), seeds=seeds)
    return returns(jax.device_get(result.history))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated ids, or 'all' (Table 1's six)")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--num-envs", type=int, default=100)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--control", action="store_true", help="also TRPO with the paper's MLP policy")
    p.add_argument("--out", default=str(RESULTS / "rllab_recurrent.json"))
    a = p.parse_args()
    tasks = list(PAPER_TRPO) if a.tasks == "all" else a.tasks.split(",")
    steps = a.num_envs * 100
    gru = recurrent_trpo.Config(num_envs=a.num_envs, num_steps=100, total_steps=a.iterations * steps)
    mlp = trpo.Config(num_envs=a.num_envs, num_steps=100, total_steps=a.iterations * steps, gamma=0.99,
                      gae_lambda=1.0, max_kl=0.1, baseline="linear", bootstrap_truncation=False, hidden=(100, 50, 25))
    figures = dict(iterations=a.iterations, steps_per_iteration=steps, seeds=a.seeds, max_kl=gru.max_kl)
    for task in tasks:
        runs = [("", recurrent_trpo.TRPO, gru)] + ([("mlp_", trpo.ALGO, mlp)] if a.control else [])
        for prefix, algo, config in runs:
            every, last = run(algo, config, task, a.seeds)
            figures.update({f"{task}_{prefix}all_trajectories": float(every.mean()),
                            f"{task}_{prefix}all_trajectories_per_seed": every.round(1).tolist(),
                            f"{task}_{prefix}last_iteration": float(last.mean()),
                            f"{task}_{prefix}last_iteration_per_seed": last.round(1).tolist()})
            print(f"{task:28s} {prefix or 'gru_':5s} all {every.mean():8.1f}  last {last.mean():8.1f}  "
                  f"(paper TRPO {PAPER_TRPO.get(task)})", flush=True)
        figures[f"{task}_paper_trpo"] = PAPER_TRPO.get(task)
    write_result(Path(a.out), figures)


if __name__ == "__main__":
    main()
