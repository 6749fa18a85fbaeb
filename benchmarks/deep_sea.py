"""Deep exploration on DeepSea (bsuite's definition, ``surrogate.envs.deep_sea``): ensemble UCB and
bootstrapped DQN against epsilon-greedy DQN at the same budget.

Issue 26's claim: on DeepSea of size >= 20, ensemble UCB (and bootstrapped DQN) find the treasure in
>= 4 of 5 seeds where epsilon-greedy DQN does not, in the same budget. A learning run, not a timing one.

Each algorithm trains ``--seeds`` seeds as one jitted run (seeds vmapped and sharded over the host's
CPU devices) for ``--episodes`` episodes of size N (N env steps each; one episode per iteration:
one env, N steps). All three use the same torso (``--hidden``, relu), replay (10k transitions,
batch 128, one gradient step per env step after 128 transitions, double-DQN targets, a hard target
copy after every episode), Adam 1e-3 and budget; they differ in exploration:

* ``ensemble_ucb``: K heads (``--heads``, default 10), UCB lambda ``--ucb-lambda`` (0.1), masks
  p = ``--mask-prob`` (0.5), no epsilon (``q_ensemble.PRESETS["deep_sea"]``);
* ``bootstrapped_dqn``: the same ensemble, one head per episode, no epsilon;
* ``dqn``: one Q-network, epsilon-greedy with bsuite's DQN baseline's constant epsilon 0.05
  (uniform actions before learning starts, as for the ensembles).

``--prior-scale`` > 0 adds randomized prior functions (Osband et al. 2018) to both ensembles: not
the paper's method, reported separately if used. Per seed: ``first_treasure_episode`` (the first
episode with return > 0.5; null if none) and ``final_greedy_return`` (one deterministic episode
after training: the ensemble's mean-Q greedy action for UCB, the heads' majority vote for
bootstrapped DQN, greedy Q for DQN; the env is deterministic). ``found`` counts seeds that found
the treasure at least once.

The results file keeps one entry per setting (``--label``, default from the flags) under ``runs``,
each with its own command and date; ``--merge`` adds this invocation's setting to those already in
``--out``; ``found`` sums them up (setting -> N -> algorithm -> seeds that found the treasure).

  python benchmarks/deep_sea.py                                  # N = 20, 5 seeds, 1000 episodes: ~10 min
  python benchmarks/deep_sea.py --merge --prior-scale 5 --algos ensemble_ucb bootstrapped_dqn
  python benchmarks/deep_sea.py --quick --out /tmp/q.json        # smoke test: tiny runs
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (first: sets the host device count before jax is imported)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from common import RESULTS, write_result  # noqa: E402
from surrogate import envs  # noqa: E402
from surrogate.algos import dqn, get, q_ensemble  # noqa: E402

ALGOS = ("ensemble_ucb", "bootstrapped_dqn", "dqn")


def configs(size: int, episodes: int, args) -> dict:
    """The three configs at DeepSea ``size``: the same budget, network, replay and target updates."""
    ens = dataclasses.replace(q_ensemble.PRESETS["deep_sea"], env=f"DeepSea-bsuite-{size}", num_steps=size,
                              gradient_steps=size, total_steps=episodes * size, hidden=tuple(args.hidden),
                              num_heads=args.heads, ucb_lambda=args.ucb_lambda, mask_prob=args.mask_prob,
                              prior_scale=args.prior_scale)
    shared = {f.name: getattr(ens, f.name) for f in dataclasses.fields(dqn.Config) if hasattr(ens, f.name)}
    base = dqn.Config(**{**shared, "dueling": False, "double_q": True, "eps_start": 0.05, "eps_end": 0.05})
    return {"ensemble_ucb": ens, "bootstrapped_dqn": ens, "dqn": base}


def run_one(name: str, config, env, seeds: int) -> dict:
    algo = get(name)
    t = time.perf_counter()
    result = algo.train(config, env, jax.random.PRNGKey(0), seeds=seeds)
    seconds = time.perf_counter() - t
    returns = np.asarray(result.history["episode_return_sum"])  # [seeds, iterations]: one episode each
    counts = np.asarray(result.history["episode_count"])
    assert (counts == 1).all(), "one episode per iteration expected (num_envs 1, num_steps N)"
    first, final = [], []
    for i in range(seeds):
        hits = np.flatnonzero(returns[i] > 0.5)
        first.append(int(hits[0]) + 1 if hits.size else None)
        params, stats = algo.seed_policy(config, result, i)
        final.append(float(np.mean(algo.evaluate(config, env, params, stats, jax.random.PRNGKey(100 + i), 1))))
    return dict(first_treasure_episode=first, found=sum(f is not None for f in first),
                treasure_episodes=[int((r > 0.5).sum()) for r in returns], final_greedy_return=final,
                solved_greedy=sum(r > 0.5 for r in final), seconds=seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[20])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--heads", type=int, default=10)
    p.add_argument("--ucb-lambda", type=float, default=0.1)
    p.add_argument("--mask-prob", type=float, default=0.5)
    p.add_argument("--prior-scale", type=float, default=0.0)
    p.add_argument("--hidden", type=int, nargs="+", default=[50, 50])
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--label", default=None, help="name of this setting in the results file (default: from the flags)")
    p.add_argument("--merge", action="store_true", help="keep the other settings' results already in --out")
    p.add_argument("--quick", action="store_true", help="tiny runs (N = 10, 2 seeds, 20 episodes): a smoke test")
    p.add_argument("--out", type=Path, default=RESULTS / "deep_sea.json")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.seeds, args.episodes, args.heads = [10], 2, 20, 4
    label = args.label or (f"K{args.heads}_lambda{args.ucb_lambda:g}_p{args.mask_prob:g}_prior{args.prior_scale:g}"
                           f"_episodes{args.episodes}")
    this = dict(command=" ".join([Path(sys.executable).name, *sys.argv]), date=time.strftime("%Y-%m-%d %H:%M:%S"),
                quick=args.quick, seeds=args.seeds, episodes=args.episodes, heads=args.heads,
                ucb_lambda=args.ucb_lambda, mask_prob=args.mask_prob, prior_scale=args.prior_scale,
                hidden=args.hidden, results={})
    for size in args.sizes:
        env = envs.make("DeepSea-bsuite", size=size)
        cfgs = configs(size, args.episodes, args)
        this["results"][str(size)] = {}
        for name in args.algos:
            out = run_one(name, cfgs[name], env, args.seeds)
            out["config"] = dataclasses.asdict(cfgs[name])
            this["results"][str(size)][name] = out
            print(f"N={size:3d} {name:17s} found {out['found']}/{args.seeds}  first {out['first_treasure_episode']}"
                  f"  greedy {['%.2f' % r for r in out['final_greedy_return']]}  ({out['seconds']:.0f} s)", flush=True)
    runs = json.loads(args.out.read_text()).get("runs", {}) if args.merge and args.out.exists() else {}
    runs[label] = this
    found = {lab: {n: {a: r["found"] for a, r in row.items()} for n, row in run["results"].items()}
             for lab, run in runs.items()}
    write_result(args.out, dict(found=found, runs=runs))
    print(f"\n{'setting':48s} {'N':>4} " + " ".join(f"{a:>17s}" for a in ALGOS) + "   (seeds that found the treasure)")
    for lab, per_size in found.items():
        for n, row in per_size.items():
            cells = [f"{row[a]}/{runs[lab]['seeds']}" if a in row else "-" for a in ALGOS]
            print(f"{lab:48s} {n:>4} " + " ".join(f"{c:>17s}" for c in cells))


if __name__ == "__main__":
    main()
