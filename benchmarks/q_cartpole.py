"""Soft Q-learning and entropy-regularised A2C on CartPole-v1: what the default configs learn, and the
equivalence of the two (Schulman, Chen & Abbeel 2017, sec. 4) on a real run.

Learning: for each algorithm, one jitted run of ``--seeds`` seeds (vmapped) at its default config; the
final policy of each seed is evaluated on 20 deterministic episodes (``final_returns``); ``curve`` is the
mean training episode return per iteration (all seeds), ``steps_to_475`` per seed the first iteration
whose training episodes averaged >= 475, in env steps (training episodes sample the stochastic policy).

Equivalence: soft Q-learning at tau = 0.5 and A2C in the Q parametrization with vf_coef = 1 / tau,
Adam's epsilon and the clip norm scaled by 1 / tau, from the same seed: the largest parameter
difference after 10 updates (``equivalence_max_param_diff_10_updates``), and over
``--equivalence-updates`` updates the first iteration whose training returns differ (the two programs
round differently; once a sampled action differs the runs part) and the difference at the end.

  python benchmarks/q_cartpole.py                  # ~3 minutes on 2 cores
  python benchmarks/q_cartpole.py --quick --out /tmp/q.json
"""
import argparse
import dataclasses
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (first: sets the host device count before jax is imported)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from common import RESULTS, write_result  # noqa: E402
from surrogate import algos, envs  # noqa: E402
from surrogate.algos import a2c, soft_q  # noqa: E402


def learning(name: str, env, seeds: int, quick: bool) -> dict:
    algo = algos.get(name)
    cfg = algo.Config()
    if quick:
        cfg = dataclasses.replace(cfg, total_steps=20_000)
    t = time.perf_counter()
    result = algo.train(cfg, env, jax.random.PRNGKey(0), seeds=seeds)
    wall = time.perf_counter() - t
    h = result.history
    per_iter = h["episode_return_sum"] / np.maximum(h["episode_count"], 1)  # [seeds, iterations]
    steps = result.steps_per_update
    first = lambda row: next((int((i + 1) * steps) for i, r in enumerate(row) if r >= 475), None)
    final = [float(algo.evaluate(cfg, env, *algo.seed_policy(cfg, result, i), jax.random.PRNGKey(1000 + i),
                                 20).mean()) for i in range(seeds)]
    every = max(1, per_iter.shape[1] // 200)
    return {"config": dataclasses.asdict(cfg), "seeds": seeds, "final_returns": final,
            "seeds_reaching_475": sum(r >= 475 for r in final), "steps_to_475": [first(r) for r in per_iter],
            "curve_steps": [(i + 1) * steps for i in range(0, per_iter.shape[1], every)],
            "curve": per_iter.mean(0)[::every].tolist(), "wall_s_incl_compile": wall}


def equivalence_runs(env, updates: int):
    """Soft Q-learning at tau = 0.5 and A2C in its parametrization, ``updates`` updates from one seed."""
    tau = 0.5
    sq = soft_q.Config(tau=tau, anneal_lr=False)
    sq = dataclasses.replace(sq, total_steps=updates * sq.num_envs * sq.num_steps)
    ac = a2c.Config(total_steps=sq.total_steps, num_envs=sq.num_envs, num_steps=sq.num_steps, gamma=sq.gamma,
                    gae_lambda=1.0, tau=tau, vf_coef=1.0 / tau, optimizer="adam", opt_eps=sq.adam_eps / tau,
                    max_grad_norm=sq.max_grad_norm / tau, learning_rate=sq.learning_rate, parametrization="q",
                    hidden=sq.hidden, activation=sq.activation)
    key = jax.random.PRNGKey(0)
    return tau, soft_q.ALGO.train(sq, env, key), a2c.ALGO.train(ac, env, key)


def max_diff(a, b) -> float:
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.abs(np.asarray(x) - np.asarray(y)).max()), a, b)))


def equivalence(env, updates: int) -> dict:
    """After 10 updates: the largest parameter difference. Over ``updates`` updates: the first iteration
    whose training returns differ (float rounding differs between the two programs; once one sampled
    action differs, the runs part), and the parameter difference at the end."""
    tau, s10, a10 = equivalence_runs(env, 10)
    _, s, a = equivalence_runs(env, updates)
    differ = np.nonzero(s.history["episode_return_sum"][0] != a.history["episode_return_sum"][0])[0]
    return {"equivalence_tau": tau, "equivalence_max_param_diff_10_updates": max_diff(s10.state.algo.params,
                                                                                        a10.state.algo.params),
            "equivalence_max_param": max(float(np.abs(np.asarray(x)).max()) for x in jax.tree.leaves(s10.state.algo.params)),
            "equivalence_updates": updates,
            "equivalence_first_differing_iteration": int(differ[0]) + 1 if differ.size else None,
            "equivalence_max_param_diff_end": max_diff(s.state.algo.params, a.state.algo.params)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--algos", default="soft_q,a2c")
    p.add_argument("--equivalence-updates", type=int, default=2000)
    p.add_argument("--out", default=str(RESULTS / "q_cartpole.json"))
    a = p.parse_args()
    env = envs.make("CartPole-v1")
    figures = {"quick": a.quick}
    for name in a.algos.split(","):
        figures[name] = learning(name, env, 2 if a.quick else a.seeds, a.quick)
        print(f"{name}: final returns {figures[name]['final_returns']}, steps to 475 {figures[name]['steps_to_475']}")
    figures.update(equivalence(env, 10 if a.quick else a.equivalence_updates))
    out = write_result(Path(a.out), figures)
    print({k: v for k, v in out.items() if k.startswith("equivalence")})


if __name__ == "__main__":
    main()
