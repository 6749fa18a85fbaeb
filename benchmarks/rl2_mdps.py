"""RL² on random tabular MDPs: the paper's Table 2 (Duan et al. 2016, arXiv 1611.02779, sec. 4.2) with every
baseline (helper module ``surrogate.rl2.mdp_baselines``: Random, PSRL, OPSRL, UCRL2, BEB, eps-Greedy, Greedy,
tuned per cell) and RL² trained per cell (seeds vmapped), all on the same MDPs (10,000 by default; 10 states, 5 actions,
reward means ~ N(1, 1) with unit-variance Gaussian rewards, flat-Dirichlet transitions, episodes of 10 steps
from the first state).

  .venv/bin/python benchmarks/rl2_mdps.py [--cells n10,n25] [--seeds 4] [--trials T] [--skip-done]

One file per cell in results/rl2_mdps/<cell>.json, then results/rl2_mdps.json and the Markdown table with the
paper's cells beside ours. ``--summary``: only rebuild the summary.
"""
import time

import numpy as np

import rl2_common
from rl2_common import cell_figures, evaluate_cell, log, trained_policies, with_budget

NAME = "rl2_mdps"
COLUMNS = ["Random", "PSRL", "OPSRL", "UCRL2", "BEB", "eps_greedy", "Greedy"]
_PAPER = {10: (100.1, 138.1, 144.1, 146.6, 150.2, 132.8, 134.8, 156.2),
          25: (250.2, 408.8, 425.2, 424.1, 427.8, 377.3, 368.8, 445.7),
          50: (499.7, 904.4, 930.7, 918.9, 917.8, 823.3, 769.3, 936.1),
          75: (749.9, 1417.1, 1449.2, 1427.6, 1422.6, 1293.9, 1172.9, 1428.8),
          100: (999.4, 1939.5, 1973.9, 1942.1, 1935.1, 1778.2, 1578.5, 1913.7)}
CELLS = {f"n{n}": dict(zip([*COLUMNS, "RL2"], row)) for n, row in _PAPER.items()}
TRIALS = 25_600  # default training trials per seed


def make_config(cell, args):
    from surrogate.algos import rl2

    cfg = rl2.Config(task="mdp", episodes=int(cell[1:]), num_envs=128)
    return with_budget(cfg, args.trials or TRIALS).validate()


def compute(cell, cfg, args, previous=None):
    from surrogate.algos import rl2
    from surrogate.envs import rl2_tasks
    from surrogate.rl2 import mdp_baselines as mb

    n = int(cell[1:])
    env, policies, training = trained_policies(NAME, cell, cfg, args, previous)
    reward_means, transitions = mb.draw_mdps(np.random.default_rng(2_000 + n), args.instances)
    task = rl2.task_arrays(cfg, reward_means, transitions)
    totals = evaluate_cell(cfg, env, policies, task)
    mode_totals = evaluate_cell(cfg, env, policies, task, deterministic=True)
    t = time.time()
    baselines = mb.evaluate_mdp_baselines(reward_means, transitions, n, rl2_tasks.MDP_HORIZON, seed=7, tune=True)
    return cell_figures(cfg, args.seeds, training, totals, baselines, CELLS[cell],
                        dict(baselines_s=round(time.time() - t, 1)), mode_totals)


def main(argv=None):
    rl2_common.main(__doc__, NAME, CELLS, COLUMNS, make_config, compute, lambda c: f"n={c[1:]}", argv)


if __name__ == "__main__":
    main()
