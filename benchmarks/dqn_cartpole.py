"""DQN on CartPole-v1: training speed against rejax 0.1.3 and Stable-Baselines3 2.9.2, in one run.

Every figure is a ratio against a peer measured in the same run of this script, on the same machine,
training time only (compile excluded). The peers run as subprocesses in their own virtual environment
(``--peers-python``: torch CPU + stable-baselines3 2.9.2, rejax 0.1.3 + gymnax 0.0.9) with the scripts
in ``benchmarks/peers/`` (adapted from ``shared/peers/``); ours run in fresh subprocesses too
(``--worker``, persistent compile cache off). Each JAX side: ``jit(...).lower().compile()``, one warm-up
call, then ``--repeats`` timed calls with ``block_until_ready``; the fastest warm call counts (noise on a
shared CPU only slows things down), the median is kept beside it.

* ``speedup_vs_rejax_sps``: steps/s of one seed at rejax's CartPole config (ours: preset
  ``cartpole-rejax``, the same hyperparameters and semantics; 100k steps), ``--rounds`` rounds of fresh
  processes alternating rejax and ours (the machine's speed drifts over minutes), each side's best
  round. Target >= 1.0. rejax's one end-of-training evaluation is a no-op in its timed program.
* ``sixteen_seeds_speedup_vs_rejax``: total steps/s of 16 seeds, ours (vmapped and sharded over the
  host's CPU devices) vs ``jit(vmap(rejax.train))``, both at rejax's config with ``--sixteen-total``
  steps per seed (25k: rejax's 16-seed program takes ~1 min a call at 100k); both then spend the same
  first 5k steps filling the buffer. Target >= 1.8.
* ``speedup_vs_sb3_sps``: steps/s of one seed at rl-zoo3's config (ours: preset ``cartpole-zoo``,
  50k steps) vs SB3's DQN ``learn()`` without callbacks, with 1 torch thread and with torch's default,
  the faster. Target >= 3.
* Final returns (20 greedy episodes for ours and SB3; rejax's own evaluation, 128 episodes at
  epsilon 0.005) of the timed runs, for reference: they are single seeds.

  python benchmarks/dqn_cartpole.py                               # ~12 minutes on 2 cores; quiet machine
  python benchmarks/dqn_cartpole.py --quick --out /tmp/q.json     # smoke test: tiny runs, not a measurement
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
from surrogate.algos import dqn  # noqa: E402

ENV_ID = "CartPole-v1"
PEERS = HERE / "peers"


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- our worker (fresh process)


def our_speed(preset: str, seeds: int, total: int, repeats: int) -> dict:
    """Compile time and warm steps/s of the whole run as one program; final greedy returns of each seed."""
    algo = dqn.ALGO
    config = dataclasses.replace(dqn.PRESETS[preset], total_steps=total)
    env = envs.make(ENV_ID)
    run = time_whole_run(algo, config, env, seeds, repeats)
    out, times, steps, compile_s = run["out"], run["times"], run["steps_per_seed"], run["compile_s"]
    warm = times[1:]
    returns = []
    for i in range(seeds):
        params = algo.evaluated_policy(config, jax.tree.map(lambda x: x[i], out.algo))
        returns.append(float(np.mean(algo.evaluate(config, env, params, None, jax.random.PRNGKey(10_000 + i), 20))))
    return dict(lib="surrogate", preset=preset, seeds=seeds, steps_per_seed=steps, compile_s=compile_s,
                first_call_s=times[0], warm_call_s=warm, sps_total_best=steps * seeds / min(warm),
                sps_total_median=steps * seeds / float(np.median(warm)), final_return_per_seed=returns,
                final_return_mean=float(np.mean(returns)), devices=str(jax.devices()), load=os.getloadavg())


# ----------------------------------------------------------------------------- measurements


def env_for(ours: bool, **extra) -> dict:
    e = dict(ORIG_ENV)
    if not ours:  # peers: JAX's defaults (no persistent cache)
        e.pop("JAX_COMPILATION_CACHE_DIR", None)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def best(runs: list) -> dict:
    """Fresh-process runs of one side merged: the fastest warm call over all, the median of all; runs kept."""
    warm = [t for r in runs for t in r["warm_call_s"]]
    steps = runs[0]["steps_per_seed"] * runs[0].get("seeds", runs[0].get("nseeds"))
    return dict(runs[-1], warm_call_s=warm, sps_total_best=steps / min(warm),
                sps_total_median=steps / float(np.median(warm)), compile_s=min(r["compile_s"] for r in runs),
                rounds=runs)


def measure(a, peers_py: Path) -> dict:
    me = [sys.executable, __file__, "--worker"]
    ours_env, peer_env = env_for(True, SURROGATE_COMPILE_CACHE=0), env_for(False)
    r = {"rejax_1": [], "ours_1": []}
    for i in range(a.rounds):  # alternating fresh processes, so a slow spell of the machine hits both sides
        log(f"round {i + 1}/{a.rounds}: rejax, 1 seed, {a.total} steps")
        r["rejax_1"].append(run_json([peers_py, PEERS / "rejax_offpolicy.py", "dqn", 1, a.total, a.repeats], peer_env,
                                     "rejax 1 seed"))
        log(f"round {i + 1}/{a.rounds}: ours, 1 seed, preset cartpole-rejax")
        r["ours_1"].append(run_json(me + ["--preset", "cartpole-rejax", "--seeds", 1, "--total", a.total,
                                          "--repeats", a.repeats], ours_env, "our 1 seed"))
    r = {k: best(v) for k, v in r.items()}
    log(f"rejax, {a.seeds} seeds vmapped, {a.sixteen_total} steps each")
    r["rejax_n"] = run_json([peers_py, PEERS / "rejax_offpolicy.py", "dqn", a.seeds, a.sixteen_total, a.repeats_many],
                            peer_env, "rejax many seeds")
    log(f"ours, {a.seeds} seeds, {a.sixteen_total} steps each")
    r["ours_n"] = run_json(me + ["--preset", "cartpole-rejax", "--seeds", a.seeds, "--total", a.sixteen_total,
                                 "--repeats", a.repeats_many], ours_env, "our many seeds")
    for threads in ("1", "default"):
        log(f"SB3 alone, 1 seed, {a.zoo_total} steps, torch threads {threads}")
        extra = dict(OMP_NUM_THREADS=1, MKL_NUM_THREADS=1) if threads == "1" else {}
        r[f"sb3_threads_{threads}"] = run_json([peers_py, PEERS / "sb3_offpolicy.py", "dqn", threads, 0, a.zoo_total],
                                               env_for(False, **extra), "sb3")
    log(f"ours, 1 seed, preset cartpole-zoo, {a.zoo_total} steps")
    r["ours_zoo"] = run_json(me + ["--preset", "cartpole-zoo", "--seeds", 1, "--total", a.zoo_total,
                                   "--repeats", a.repeats], ours_env, "our rl-zoo config")
    return r


def figures(a, r: dict) -> dict:
    o1, r1, on, rn, oz = r["ours_1"], r["rejax_1"], r["ours_n"], r["rejax_n"], r["ours_zoo"]
    sb3 = max((r["sb3_threads_1"], r["sb3_threads_default"]), key=lambda x: x["sps"])
    f = dict(
        speedup_vs_rejax_sps=o1["sps_total_best"] / r1["sps_total_best"],
        sixteen_seeds_speedup_vs_rejax=on["sps_total_best"] / rn["sps_total_best"],
        speedup_vs_sb3_sps=oz["sps_total_best"] / sb3["sps"],
        our_sps_rejax_config_1seed=o1["sps_total_best"], our_sps_rejax_config_1seed_median=o1["sps_total_median"],
        rejax_sps_1seed=r1["sps_total_best"], rejax_sps_1seed_median=r1["sps_total_median"],
        our_sps_total_sixteen_seeds=on["sps_total_best"], our_sps_total_sixteen_seeds_median=on["sps_total_median"],
        rejax_sps_total_sixteen_seeds=rn["sps_total_best"],
        rejax_sps_total_sixteen_seeds_median=rn["sps_total_median"],
        our_sps_rlzoo_config_1seed=oz["sps_total_best"], our_sps_rlzoo_config_1seed_median=oz["sps_total_median"],
        sb3_sps_1seed=sb3["sps"], sb3_sps_1seed_torch_threads_1=r["sb3_threads_1"]["sps"],
        sb3_sps_1seed_torch_threads_default=r["sb3_threads_default"]["sps"],
        sb3_torch_threads_default=r["sb3_threads_default"]["threads"],
        compile_s=o1["compile_s"], rejax_compile_s=r1["compile_s"],
        compile_sixteen_seeds_s=on["compile_s"], rejax_compile_sixteen_seeds_s=rn["compile_s"],
        # final returns of the timed single-seed runs (one seed each: for reference, not a learning result)
        final_return_mean=o1["final_return_mean"], rejax_final_return_mean=r1["final_return_mean"],
        final_return_rounds=[x["final_return_mean"] for x in o1["rounds"]],
        rejax_final_return_rounds=[x["final_return_mean"] for x in r1["rounds"]],
        final_return_sixteen_seeds=on["final_return_per_seed"],
        rejax_final_return_sixteen_seeds=rn["final_return_per_seed"],
        zoo_final_return=oz["final_return_mean"], sb3_final_return=sb3["final_eval_mean"],
        sb3_final_return_both_runs=[r["sb3_threads_1"]["final_eval_mean"], r["sb3_threads_default"]["final_eval_mean"]],
    )
    f["settings"] = dict(
        quick=a.quick, total_steps_single_seed=a.total, sixteen_seeds=a.seeds,
        total_steps_sixteen_seeds=a.sixteen_total, total_steps_rlzoo=a.zoo_total, rounds_single_seed=a.rounds,
        repeats_single=a.repeats, repeats_many=a.repeats_many,
        steps_per_seed={"ours_rejax_config": o1["steps_per_seed"], "rejax": r1["steps_per_seed"],
                        "ours_sixteen": on["steps_per_seed"], "rejax_sixteen": rn["steps_per_seed"],
                        "ours_rlzoo_config": oz["steps_per_seed"], "sb3": sb3["steps"]},
        sps_statistic="fastest warm call (median kept beside it); SB3: its one learn() call, the faster thread setting",
        final_return="ours and SB3: 20 greedy episodes; rejax: its evaluation, 128 episodes at epsilon 0.005",
        configs={"cartpole-rejax": dataclasses.asdict(dqn.PRESETS["cartpole-rejax"]),
                 "cartpole-zoo": dataclasses.asdict(dqn.PRESETS["cartpole-zoo"])})
    f["peer_raw"] = {k: v for k, v in r.items() if not k.startswith("ours")}
    f["our_raw"] = {k: v for k, v in r.items() if k.startswith("ours")}
    return f


def table(f: dict, seeds: int):
    k = lambda x: f"{x / 1000:.1f}k"
    rows = [("steps/s, 1 seed, rejax config", k(f["our_sps_rejax_config_1seed"]), k(f["rejax_sps_1seed"]), "rejax",
             f"{f['speedup_vs_rejax_sps']:.2f}x", ">= 1.0x"),
            (f"total steps/s, {seeds} seeds, rejax config", k(f["our_sps_total_sixteen_seeds"]),
             k(f["rejax_sps_total_sixteen_seeds"]), "rejax", f"{f['sixteen_seeds_speedup_vs_rejax']:.2f}x", ">= 1.8x"),
            ("steps/s, 1 seed, rl-zoo config", k(f["our_sps_rlzoo_config_1seed"]), k(f["sb3_sps_1seed"]), "SB3",
             f"{f['speedup_vs_sb3_sps']:.2f}x", ">= 3x"),
            ("final return, rejax config (1 seed)", f"{f['final_return_mean']:.0f}",
             f"{f['rejax_final_return_mean']:.0f}", "rejax", "", "-"),
            ("final return, rl-zoo config (1 seed)", f"{f['zoo_final_return']:.0f}", f"{f['sb3_final_return']:.0f}",
             "SB3", "", "-")]
    head = ("figure", "ours", "peer", "vs", "ratio", "target")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: tiny runs, 2 seeds, one round")
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--out", default=str(RESULTS / "dqn_cartpole.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="cartpole-rejax", help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--total", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(our_speed(a.preset, a.seeds, a.total, a.repeats)), flush=True)
        return
    a.total = a.total or (6_000 if a.quick else 100_000)
    a.seeds = a.seeds or (2 if a.quick else 16)
    a.sixteen_total = 6_000 if a.quick else 25_000
    a.zoo_total = 2_048 if a.quick else 50_000
    a.repeats = a.repeats or (1 if a.quick else 2)
    a.repeats_many = 1
    a.rounds = 1 if a.quick else 3
    peers_py = Path(a.peers_python)
    if not peers_py.exists():
        sys.exit(f"peers python {peers_py} not found: run `make bench-peers` or pass --peers-python")
    t0, load_before = time.perf_counter(), os.getloadavg()
    r = measure(a, peers_py)
    f = figures(a, r)
    f["benchmark_wall_s"] = time.perf_counter() - t0
    f["load_avg_before_after"] = [load_before, os.getloadavg()]
    write_result(Path(a.out), f, extra_versions={"peers": {**r["rejax_1"]["versions"],
                                                           **r["sb3_threads_1"]["versions"]}})
    print()
    table(f, a.seeds)
    print(f"\nwrote {a.out} ({f['benchmark_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
