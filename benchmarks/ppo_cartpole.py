"""PPO on CartPole-v1: speed, compile time, start-up time and sample efficiency against rejax and SB3.

Every figure is a ratio against a peer measured in the same run of this script, on the same
machine. The peers run as subprocesses in their own virtual environment (``--peers-python``,
made by ``make bench-peers``: torch CPU + stable-baselines3 2.9.2, rejax 0.1.3 + gymnax 0.0.9)
with the scripts in ``benchmarks/peers/`` (adapted from the reference scripts in
``shared/peers/``). Ours run in fresh subprocesses too (``--worker``), except (e). Where a
measurement repeats, steps/s is taken from the fastest warm call (noise on a shared CPU only
slows things down) for ours and the peer alike; the median is kept beside it. The one-seed
measurements of (a) and (c) run in three rounds of fresh processes, rejax and ours alternating (the
machine's speed drifts by up to ~25% over minutes), and each side's best round counts.

(a) ``speedup_vs_rejax_sps``: training steps/s of one seed, compile excluded. Ours at the
    ``cartpole-rejax`` preset (rejax's own CartPole config and semantics: 5 envs x 100 steps,
    5 epochs x 5 minibatches) vs rejax at that config with ``eval_freq = total_timesteps`` and
    ``skip_initial_evaluation=True``; the one evaluation rejax still runs at the end of training
    is replaced by a no-op, so both sides are pure training. Each side: ``jit(...).lower().compile()``,
    one warm-up call, then timed calls with ``block_until_ready``. Target >= 1.0. Ours uses both
    cores for its one seed (the actor's epochs on one device, the critic's on the other:
    ``runtime.parts.learn_parts_in_parallel``); rejax uses one. ``one_device_speedup_vs_rejax_sps`` is
    ours on one device (``SURROGATE_HOST_DEVICES=1``), measured in the same rounds, for reference.
    ``speedup_vs_sb3_sps``: ours at the rl-zoo config (preset ``cartpole``: 8 envs x 32 steps,
    20 epochs, 1 minibatch) vs SB3 PPO (torch CPU) with the rl-zoo hyperparameters, ``learn()``
    time without any callback; SB3 runs alone, once with 1 torch thread and once with torch's
    default, and its faster figure is used. Target >= 5.
(b) ``sixteen_seeds_speedup_vs_rejax``: total steps/s of 16 seeds, compile excluded: ours
    (vmapped and sharded over the host CPU devices) vs ``jit(vmap(rejax.train))``, both at the
    rejax config. Target >= 1.8.
(c) ``compile_s``: our cold compile (initialiser + whole training run, one seed, rejax config)
    in a fresh process with the persistent cache off (``SURROGATE_COMPILE_CACHE=0``);
    ``rejax_compile_s``: the same for rejax (it has no persistent cache by default). Both after
    a trivial jitted op, so JAX backend start-up counts for neither. Target compile_s <= 0.6x.
    ``compile_with_eval_s`` / ``rejax_compile_with_eval_s``: the same with evaluation: rejax as the
    issue configures it (``eval_freq = total_timesteps``: its one end-of-training evaluation is
    compiled into the training program; the issue's reference figure, ~4.3 s, was measured so)
    against ours plus the compile of our (separately jitted) evaluation.
    ``warm_start_s``: launch of a fresh ``python -c`` process that imports surrogate and trains
    one seed at the rejax config for 100k steps, to the time its result is ready, with a warm
    persistent cache (a fresh cache directory filled by one run before; that first run's time is
    ``cold_start_s``); best of two. ``rejax_cold_start_s``: the same program for rejax (launch,
    import, create, jit, train one seed), best of two. Target warm_start_s <= 0.5x.
(d) ``sixteen_seeds_speedup_vs_sb3``: wall clock with everything included (process launch,
    imports, compile, training; 100k steps per seed, rl-zoo config) for 16 seeds. Ours: one
    process, cold compile (persistent cache off), ``ppo.ALGO.train(..., seeds=16)``. SB3: two
    processes in parallel (one per core, 1 torch thread each), each training 8 seeds one after
    the other (one import per process, which favours SB3 over 16 separate processes); the wall
    time runs from launching the first process to the later of the two "training done" times.
    No evaluation runs during SB3 training (see (e)). Target >= 5.
(e) ``median_steps_to_475``: per seed, the first evaluation (20 deterministic episodes) with mean
    return >= 475, evaluated every 10k steps, at the rl-zoo config. Both sides evaluate, at each
    multiple of 10k, the policy in effect when the step counter passed it: SB3's policy is
    snapshotted (a state_dict copy) whenever ``num_timesteps`` passes a multiple of 10k (the same
    16 runs as (d), seeds 0-15), and the snapshots are evaluated after the training clock of (d)
    stopped, as the reference script's evaluation callback would; ours (16 seeds in this process,
    one update of 256 steps per call) evaluates the parameters after the last update that ended at
    or before each multiple (the one acting at that step). Seeds that never reach 475 count as
    infinitely many steps in the median (``null`` if the median itself is not reached).

  python benchmarks/ppo_cartpole.py                       # full run, ~6-10 minutes on 2 cores
  python benchmarks/ppo_cartpole.py --quick --out /tmp/q.json   # smoke test: 20k steps, 2 seeds
"""
import os

ORIG_ENV = dict(os.environ)  # before `import surrogate` adds XLA_FLAGS: what subprocesses start from

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, last_json, run_json, time_whole_run, write_result  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import ppo  # noqa: E402
from surrogate.runtime.train import eval_program  # noqa: E402

ENV_ID = "CartPole-v1"
PEERS = HERE / "peers"
THRESHOLD = 475.0

# A user's program: import, train, result ready. argv: preset total_steps seeds.
OUR_START = """
import time, json, sys, dataclasses
import surrogate, jax
from surrogate import envs
from surrogate.algos import ppo
cfg = dataclasses.replace(ppo.PRESETS[sys.argv[1]], total_steps=int(sys.argv[2]))
res = ppo.ALGO.train(cfg, envs.make("CartPole-v1"), jax.random.PRNGKey(0), seeds=int(sys.argv[3]))
jax.block_until_ready(res.state)
print(json.dumps({"ready_unix": time.time(), "steps_per_seed": cfg.num_updates * cfg.batch_size}))
"""


# ----------------------------------------------------------------------------- our worker (fresh process)


def our_speed(preset: str, seeds: int, total: int, repeats: int) -> dict:
    """Compile time (initialiser + whole run) and warm steps/s, as in the peer scripts."""
    config = dataclasses.replace(ppo.PRESETS[preset], total_steps=total)
    env = envs.make(ENV_ID)
    run = time_whole_run(ppo.ALGO, config, env, seeds, repeats)
    runner, times, steps = run["runner"], run["times"], run["steps_per_seed"]
    init_compile_s, train_compile_s = run["init_s"], run["compile_s"]
    warm = times[1:]
    # our evaluation (compiled separately from training), for the comparison with rejax's
    # training program that has its one end-of-training evaluation compiled in
    params, stats = jax.tree.map(lambda x: x[0], (runner.algo.params, runner.env.obs_stats))
    t = time.perf_counter()
    eval_program(ppo.ALGO, config, env, 20).lower(params, stats, jax.random.PRNGKey(1)).compile()
    eval_compile_s = time.perf_counter() - t
    return dict(lib="surrogate", preset=preset, seeds=seeds, steps_per_seed=steps,
                compile_s=init_compile_s + train_compile_s, init_compile_s=init_compile_s,
                train_compile_s=train_compile_s, eval_compile_s=eval_compile_s, first_call_s=times[0], warm_call_s=warm,
                sps_total_best=steps * seeds / min(warm), sps_total_median=steps * seeds / float(np.median(warm)),
                devices=str(jax.devices()), load=os.getloadavg())


# ----------------------------------------------------------------------------- subprocess helpers


def env_for(ours: bool, **extra) -> dict:
    e = dict(ORIG_ENV)
    if not ours:  # peers: JAX's defaults (no persistent cache)
        e.pop("JAX_COMPILATION_CACHE_DIR", None)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def timed_launch(cmd: list, env: dict, what: str) -> dict:
    """Run ``cmd``; the seconds from launch to the ``ready_unix`` it prints, and to its exit."""
    t0, p0 = time.time(), time.perf_counter()
    out = run_json(cmd, env, what)
    out["exit_s"] = time.perf_counter() - p0
    out["ready_s"] = out["ready_unix"] - t0
    return out


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- measurements


def combine(runs: list) -> dict:
    """Fresh-process runs of one side merged: the fastest warm call and the shortest compile over the
    runs (noise on a shared CPU only slows things down), the median over all warm calls; runs kept."""
    warm = [t for r in runs for t in r["warm_call_s"]]
    steps = runs[0]["steps_per_seed"] * runs[0]["seeds"]
    out = dict(runs[0], warm_call_s=warm, sps_total_best=steps / min(warm), sps_total_median=steps / float(np.median(warm)),
               rounds=runs)
    for k in ("compile_s", "init_compile_s", "train_compile_s", "eval_compile_s"):
        if k in runs[0]:
            out[k] = min(r[k] for r in runs)
    if "eval_compile_s" in runs[0]:  # with evaluation: the best round's sum, not a sum of minima
        out["compile_with_eval_s"] = min(r["compile_s"] + r["eval_compile_s"] for r in runs)
    return out


def measure_speed(a, peers_py) -> dict:
    me = [sys.executable, __file__, "--worker"]
    cold = env_for(True, SURROGATE_COMPILE_CACHE=0)
    peer = env_for(False)
    one_device = env_for(True, SURROGATE_COMPILE_CACHE=0, SURROGATE_HOST_DEVICES=1)
    r = {"rejax_1": [], "rejax_1_eval": [], "ours_1": [], "ours_1_one_device": []}
    for i in range(a.rounds):  # alternating fresh processes, so a slow spell of the machine hits both sides
        log(f"(a,c) round {i + 1}/{a.rounds}: rejax, 1 seed, rejax config")
        r["rejax_1"].append(run_json([peers_py, PEERS / "rejax_ppo.py", "speed", "--seeds", 1, "--total", a.total,
                                      "--repeats", a.repeats], peer, "rejax speed 1 seed"))
        log(f"(a,c) round {i + 1}/{a.rounds}: ours, 1 seed, cartpole-rejax preset, cold compile")
        r["ours_1"].append(run_json(me + ["--preset", "cartpole-rejax", "--seeds", 1, "--total", a.total,
                                          "--repeats", a.repeats], cold, "our speed 1 seed"))
        log(f"(a) round {i + 1}/{a.rounds}: ours, 1 seed, cartpole-rejax preset, one device (reference)")
        r["ours_1_one_device"].append(run_json(me + ["--preset", "cartpole-rejax", "--seeds", 1, "--total", a.total,
                                                     "--repeats", a.repeats], one_device, "our speed 1 seed 1 device"))
        log(f"(c) round {i + 1}/{a.rounds}: rejax, 1 seed, its end-of-training evaluation kept (compile time)")
        r["rejax_1_eval"].append(run_json([peers_py, PEERS / "rejax_ppo.py", "speed", "--seeds", 1, "--total", a.total,
                                           "--repeats", 1, "--keep-eval"], peer, "rejax compile with evaluation"))
    r = {k: combine(v) for k, v in r.items()}
    log(f"(b) rejax, {a.seeds} seeds vmapped")
    r["rejax_n"] = run_json([peers_py, PEERS / "rejax_ppo.py", "speed", "--seeds", a.seeds, "--total", a.total,
                             "--repeats", a.repeats_many], peer, "rejax speed many seeds")
    log(f"(b) ours, {a.seeds} seeds")
    r["ours_n"] = run_json(me + ["--preset", "cartpole-rejax", "--seeds", a.seeds, "--total", a.total,
                                 "--repeats", a.repeats_many], cold, "our speed many seeds")
    for threads in ("1", "default"):
        log(f"(a) SB3 alone, 1 seed, torch threads {threads}")
        extra = dict(OMP_NUM_THREADS=1, MKL_NUM_THREADS=1) if threads == "1" else {}
        r[f"sb3_1_threads_{threads}"] = run_json(
            [peers_py, PEERS / "sb3_ppo.py", "--seeds", 0, "--total", a.total, "--threads", threads],
            env_for(False, **extra), "sb3 1 seed")
    log("(a) ours, 1 seed, rl-zoo preset")
    r["ours_zoo_1"] = run_json(me + ["--preset", "cartpole", "--seeds", 1, "--total", a.total, "--repeats", a.repeats],
                               cold, "our speed rl-zoo")
    return r


def measure_starts(a, peers_py) -> dict:
    r = {}
    with tempfile.TemporaryDirectory(prefix="surrogate-bench-cache-") as cache:
        e = env_for(True, SURROGATE_CACHE_DIR=cache)
        cmd = [sys.executable, "-c", OUR_START, "cartpole-rejax", a.total, 1]
        log("(c) ours, fresh process, empty persistent cache (fills it)")
        r["ours_cold"] = timed_launch(cmd, e, "our cold start")
        r["ours_warm"] = []
        for i in range(2):
            log(f"(c) ours, fresh process, warm persistent cache ({i + 1}/2)")
            r["ours_warm"].append(timed_launch(cmd, e, "our warm start"))
    r["rejax_cold"] = []
    for i in range(2):
        log(f"(c) rejax, fresh process, cold ({i + 1}/2)")
        r["rejax_cold"].append(timed_launch([peers_py, PEERS / "rejax_ppo.py", "start", "--total", a.total],
                                            env_for(False), "rejax cold start"))
    return r


def measure_many_seeds_wall(a, peers_py) -> dict:
    r = {}
    log(f"(d) ours, {a.seeds} seeds in one fresh process, rl-zoo config, cold compile")
    r["ours"] = timed_launch([sys.executable, "-c", OUR_START, "cartpole", a.total, a.seeds],
                             env_for(True, SURROGATE_COMPILE_CACHE=0), "our many-seed run")
    log(f"(d,e) SB3, {a.seeds} seeds, two processes in parallel, 1 torch thread each")
    e = env_for(False, OMP_NUM_THREADS=1, MKL_NUM_THREADS=1)
    t0 = time.time()
    procs = [subprocess.Popen([str(c) for c in [peers_py, PEERS / "sb3_ppo.py", "--seeds", *range(w, a.seeds, 2),
                                                "--total", a.total, "--threads", 1, "--snapshot-every", a.eval_every]],
                              env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent)
             for w in range(2)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode:
            raise RuntimeError(f"SB3 worker failed (exit {p.returncode}):\n{stderr[-3000:]}")
        outs.append(last_json(stdout))
    r["sb3_workers"] = outs
    r["sb3_wall_s"] = max(o["train_done_unix"] for o in outs) - t0
    r["sb3_runs"] = sorted((run for o in outs for run in o["runs"]), key=lambda run: run["seed"])
    return r


def our_steps_to_threshold(a) -> dict:
    """Ours at the rl-zoo config, evaluated at the first update boundary >= every multiple of eval_every."""
    config = dataclasses.replace(ppo.PRESETS["cartpole"], total_steps=a.total)
    env = envs.make(ENV_ID)
    spu = config.batch_size
    # the policy acting when the step counter passes mark m is the one after floor(m / spu) updates
    marks = {m // spu: m for m in range(a.eval_every, config.num_updates * spu + 1, a.eval_every)}
    evals = [[] for _ in range(a.seeds)]

    def logger(result, done):
        if done in marks:
            for i in range(a.seeds):
                params, stats = ppo.ALGO.seed_policy(config, result, i)
                ret = ppo.ALGO.evaluate(config, env, params, stats, jax.random.PRNGKey(10_000 * (i + 1) + done), 20)
                evals[i].append((marks[done], float(np.mean(ret))))

    log(f"(e) ours, {a.seeds} seeds, rl-zoo config, deterministic evaluation at steps {sorted(marks.values())} "
        f"(after updates {sorted(marks)})")
    t = time.perf_counter()
    ppo.ALGO.train(config, env, jax.random.PRNGKey(0), seeds=a.seeds, chunk_updates=1, logger=logger)
    first = [next((s for s, m in ev if m >= THRESHOLD), None) for ev in evals]
    return dict(evals=evals, first_step_ge_475=first, final_eval_mean=[ev[-1][1] for ev in evals],
                wall_s=time.perf_counter() - t)


def median_steps(first: list):
    m = float(np.median([math.inf if s is None else s for s in first]))
    return None if math.isinf(m) else m


# ----------------------------------------------------------------------------- figures and table


def figures(a, speed, starts, many, ours475) -> dict:
    f = {}
    o1, r1, on, rn, oz = speed["ours_1"], speed["rejax_1"], speed["ours_n"], speed["rejax_n"], speed["ours_zoo_1"]
    sb3_t1, sb3_td = speed["sb3_1_threads_1"]["runs"][0], speed["sb3_1_threads_default"]["runs"][0]
    sb3_sps = max(sb3_t1["sps"], sb3_td["sps"])
    f["speedup_vs_rejax_sps"] = o1["sps_total_best"] / r1["sps_total_best"]
    f["speedup_vs_sb3_sps"] = oz["sps_total_best"] / sb3_sps
    # reference, not a target: ours on one device (SURROGATE_HOST_DEVICES=1), the actor's and critic's
    # epochs one after the other as rejax runs them
    o1d = speed["ours_1_one_device"]
    f["one_device_speedup_vs_rejax_sps"] = o1d["sps_total_best"] / r1["sps_total_best"]
    f["one_device_compile_s"] = o1d["compile_s"]
    f["sixteen_seeds_speedup_vs_rejax"] = on["sps_total_best"] / rn["sps_total_best"]
    f["compile_s"] = o1["compile_s"]
    f["rejax_compile_s"] = r1["compile_s"]
    f["compile_ratio_vs_rejax"] = f["compile_s"] / f["rejax_compile_s"]
    # rejax as the issue configures it (eval_freq = total): its one evaluation is compiled into training,
    # so ours counts our evaluation's compile too
    f["compile_with_eval_s"] = o1["compile_with_eval_s"]
    f["rejax_compile_with_eval_s"] = speed["rejax_1_eval"]["compile_s"]
    f["compile_with_eval_ratio_vs_rejax"] = f["compile_with_eval_s"] / f["rejax_compile_with_eval_s"]
    f["warm_start_s"] = min(x["ready_s"] for x in starts["ours_warm"])
    f["rejax_cold_start_s"] = min(x["ready_s"] for x in starts["rejax_cold"])
    f["warm_start_ratio_vs_rejax_cold"] = f["warm_start_s"] / f["rejax_cold_start_s"]
    f["cold_start_s"] = starts["ours_cold"]["ready_s"]
    f["sixteen_seeds_wall_s"] = many["ours"]["ready_s"]
    f["sb3_sixteen_seeds_wall_s"] = many["sb3_wall_s"]
    f["sixteen_seeds_speedup_vs_sb3"] = f["sb3_sixteen_seeds_wall_s"] / f["sixteen_seeds_wall_s"]
    sb3_first = [run["first_step_ge_threshold"] for run in many["sb3_runs"]]
    f["median_steps_to_475"] = median_steps(ours475["first_step_ge_475"])
    f["sb3_median_steps_to_475"] = median_steps(sb3_first)
    # raw figures
    f.update(
        our_sps_rejax_config_1seed=o1["sps_total_best"], our_sps_rejax_config_1seed_median=o1["sps_total_median"],
        our_sps_rejax_config_1seed_one_device=o1d["sps_total_best"],
        our_sps_rejax_config_1seed_one_device_median=o1d["sps_total_median"],
        rejax_sps_1seed=r1["sps_total_best"], rejax_sps_1seed_median=r1["sps_total_median"],
        our_sps_rlzoo_config_1seed=oz["sps_total_best"], our_sps_rlzoo_config_1seed_median=oz["sps_total_median"],
        sb3_sps_1seed=sb3_sps, sb3_sps_1seed_torch_threads_1=sb3_t1["sps"],
        sb3_sps_1seed_torch_threads_default=sb3_td["sps"],
        sb3_torch_threads_default=speed["sb3_1_threads_default"]["torch_threads"],
        our_sps_total_sixteen_seeds=on["sps_total_best"], our_sps_total_sixteen_seeds_median=on["sps_total_median"],
        rejax_sps_total_sixteen_seeds=rn["sps_total_best"],
        rejax_sps_total_sixteen_seeds_median=rn["sps_total_median"],
        our_compile_split_s={"init": o1["init_compile_s"], "train": o1["train_compile_s"]},
        our_warm_start_runs_s=[x["ready_s"] for x in starts["ours_warm"]],
        rejax_cold_start_runs_s=[x["ready_s"] for x in starts["rejax_cold"]],
        sb3_sixteen_seeds_train_s_per_seed=[run["train_s"] for run in many["sb3_runs"]],
        steps_to_475_per_seed=ours475["first_step_ge_475"], sb3_steps_to_475_per_seed=sb3_first,
        seeds_reaching_475=sum(s is not None for s in ours475["first_step_ge_475"]),
        sb3_seeds_reaching_475=sum(s is not None for s in sb3_first),
        final_eval_mean_per_seed=ours475["final_eval_mean"],
        sb3_final_eval_mean_per_seed=[run["final_eval_mean"] for run in many["sb3_runs"]],
        evals_per_seed=ours475["evals"], sb3_evals_per_seed=[run["evals"] for run in many["sb3_runs"]],
    )
    f["settings"] = dict(quick=a.quick, total_steps=a.total, seeds=a.seeds, repeats_single=a.repeats,
                         repeats_many=a.repeats_many, eval_every=a.eval_every, eval_episodes=20,
                         steps_per_seed={"ours_rejax_config": o1["steps_per_seed"], "rejax": r1["steps_per_seed"],
                                         "ours_rlzoo_config": oz["steps_per_seed"], "sb3": sb3_t1["steps"]},
                         sb3_steps_to_475_seeds="the same runs as the many-seed wall clock, seeds 0..n-1",
                         rounds_single_seed=a.rounds,
                         sps_statistic="fastest warm call (median kept beside it)",
                         compile_statistic="shortest of the rounds' fresh-process compiles, each side")
    f["peer_raw"] = dict(rejax_1seed=r1, rejax_1seed_with_eval=speed["rejax_1_eval"], rejax_many=rn, sb3_1seed_threads_1=speed["sb3_1_threads_1"],
                         sb3_1seed_threads_default=speed["sb3_1_threads_default"], sb3_many=many["sb3_workers"],
                         rejax_cold_starts=starts["rejax_cold"])
    f["our_raw"] = dict(rejax_config_1seed=o1, rejax_config_1seed_one_device=o1d, rejax_config_many=on, rlzoo_config_1seed=oz, starts=starts["ours_warm"],
                        cold_start=starts["ours_cold"], many_seeds_wall=many["ours"])
    return f


def table(f: dict, seeds: int):
    def k(x):
        return f"{x / 1000:.1f}k"

    def steps(x):
        return "never" if x is None else f"{x:,.0f}"

    def ratio(x, y):
        return "-" if x is None or y is None else f"{x / y:.2f}x"

    rows = [
        ("steps/s, 1 seed, rejax config", k(f["our_sps_rejax_config_1seed"]), k(f["rejax_sps_1seed"]), "rejax",
         f"{f['speedup_vs_rejax_sps']:.2f}x", ">= 1.0x"),
        ("  (reference: ours on one device)", k(f["our_sps_rejax_config_1seed_one_device"]), k(f["rejax_sps_1seed"]),
         "rejax", f"{f['one_device_speedup_vs_rejax_sps']:.2f}x", "-"),
        ("steps/s, 1 seed, rl-zoo config", k(f["our_sps_rlzoo_config_1seed"]), k(f["sb3_sps_1seed"]), "SB3",
         f"{f['speedup_vs_sb3_sps']:.2f}x", ">= 5x"),
        (f"total steps/s, {seeds} seeds, rejax cfg", k(f["our_sps_total_sixteen_seeds"]),
         k(f["rejax_sps_total_sixteen_seeds"]), "rejax", f"{f['sixteen_seeds_speedup_vs_rejax']:.2f}x", ">= 1.8x"),
        ("cold compile, training only (s)", f"{f['compile_s']:.2f}", f"{f['rejax_compile_s']:.2f}", "rejax",
         f"{f['compile_ratio_vs_rejax']:.2f}x", "<= 0.6x"),
        ("cold compile incl. evaluation (s)", f"{f['compile_with_eval_s']:.2f}",
         f"{f['rejax_compile_with_eval_s']:.2f}", "rejax", f"{f['compile_with_eval_ratio_vs_rejax']:.2f}x", "<= 0.6x"),
        ("start to result (s): ours warm / peer cold", f"{f['warm_start_s']:.2f}", f"{f['rejax_cold_start_s']:.2f}",
         "rejax", f"{f['warm_start_ratio_vs_rejax_cold']:.2f}x", "<= 0.5x"),
        (f"wall clock, {seeds} seeds, all included (s)", f"{f['sixteen_seeds_wall_s']:.1f}",
         f"{f['sb3_sixteen_seeds_wall_s']:.1f}", "SB3", f"{f['sixteen_seeds_speedup_vs_sb3']:.2f}x faster", ">= 5x"),
        ("median steps to 475 (det. eval)", steps(f["median_steps_to_475"]), steps(f["sb3_median_steps_to_475"]),
         "SB3", ratio(f["median_steps_to_475"], f["sb3_median_steps_to_475"]), "-"),
        ("seeds reaching 475", f"{f['seeds_reaching_475']}/{seeds}", f"{f['sb3_seeds_reaching_475']}/{seeds}", "SB3",
         "", "-"),
    ]
    head = ("figure", "ours", "peer", "vs", "ratio", "target")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print(f"(ours cold start, empty cache: {f['cold_start_s']:.2f} s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 20k steps, 2 seeds, fewer repeats")
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--out", default=str(RESULTS / "ppo_cartpole.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="cartpole-rejax", help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--total", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(our_speed(a.preset, a.seeds, a.total, a.repeats)), flush=True)
        return
    a.total = a.total or (20_000 if a.quick else 100_000)
    a.seeds = a.seeds or (2 if a.quick else 16)
    a.repeats = a.repeats or (1 if a.quick else 3)
    a.repeats_many = 1 if a.quick else 2
    a.rounds = 1 if a.quick else 3
    a.eval_every = 10_000
    peers_py = Path(a.peers_python)
    if not peers_py.exists():
        sys.exit(f"peers python {peers_py} not found: run `make bench-peers` or pass --peers-python")
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    speed = measure_speed(a, peers_py)
    starts = measure_starts(a, peers_py)
    many = measure_many_seeds_wall(a, peers_py)
    ours475 = our_steps_to_threshold(a)
    f = figures(a, speed, starts, many, ours475)
    f["benchmark_wall_s"] = time.perf_counter() - t0
    f["load_avg_before_after"] = [load_before, os.getloadavg()]
    peer_versions = {"peers": {**speed["rejax_1"]["versions"], **speed["sb3_1_threads_1"]["versions"]}}
    write_result(Path(a.out), f, extra_versions=peer_versions)
    print()
    table(f, a.seeds)
    print(f"\nwrote {a.out} ({f['benchmark_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
