"""``surrogate bench rllab``: Duan et al. 2016, "Benchmarking Deep Reinforcement Learning for Continuous
Control" — its algorithms on its tasks at its protocol, as a resumable grid of Ray Tune trials, written
up as the paper's Table 1.

Protocol (../shared/paper-tables.md, "rllab benchmark", from the authors' scripts): 50,000 env steps per
iteration, horizon 500, 500 iterations, gamma 0.99, the 100-50-25 tanh Gaussian policy, GAE lambda 1;
per algorithm the settings of its ``rllab`` preset, or ``PROTOCOL`` below for the methods that predate
this benchmark in the library. A trial is one algorithm on one task with all its seeds (vmapped on JAX
envs); its cell is the paper's metric (``table.average_return``) over the seeds. On the partially
observed tasks TRPO, TNPG and VPG run their recurrent variants (``RECURRENT``) for 300 iterations. DDPG makes one update
per env step, so its trials stop at ``--ddpg-steps`` (1M by default; the paper ran 25M).
"""
import argparse
import dataclasses
import json
import time
from functools import partial
from pathlib import Path

from surrogate.bench import grid, table
from surrogate.checkpoint import atomic_write
from surrogate.errors import ConfigError

BASIC = ("CartPoleBalancing-rllab", "CartPoleSwingUp-rllab", "MountainCar-rllab", "AcrobotSwingUp-rllab",
         "DoubleInvertedPendulum-rllab")
PARTIAL = tuple(f"{t}-{v}" for v in ("LS", "NO", "SI") for t in BASIC[:4])
LOCOMOTION = ("Swimmer-v5", "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5")
HIERARCHICAL = ("PointGather-rllab", "PointMaze-rllab", "SwimmerGather-rllab", "AntGather-rllab", "SwimmerMaze-rllab",
                "AntMaze-rllab")
GROUPS = {"basic": BASIC, "partial": PARTIAL, "locomotion": LOCOMOTION, "hierarchical": HIERARCHICAL}
ALGOS = ("trpo", "tnpg", "vpg", "cem", "cmaes", "rwr", "reps", "ddpg")

# The library's pre-benchmark methods at the paper's settings (each has a grid in the paper; the value
# that produced Table 1 is not recorded, so the first basic-task value of each grid is used).
_NET = dict(hidden=(100, 50, 25), activation="tanh")
# bootstrap_truncation False: rllab's paths end at the horizon with nothing after them
_PG = dict(**_NET, gamma=0.99, gae_lambda=1.0, normalize_obs=False, normalize_reward=False, baseline="linear",
           bootstrap_truncation=False, vf_minibatch_size=500)  # (value-net minibatches when one is used)
# rllab's ConjugateGradientOptimizer as of the paper (rllab/optimizers/conjugate_gradient_optimizer.py, early
# 2016): damping ``reg_coeff`` 1e-5 and the Fisher-vector products on a 10% subsample (``subsample_factor``
# 0.1; later rllab versions default to 1.0); TNPG is NPO on it with one backtrack (the full step).
_CG = dict(cg_iters=10, cg_damping=1e-5, fvp_fraction=0.1)
PROTOCOL = {
    "trpo": dict(_PG, **_CG, max_kl=0.1, backtrack=0.8, line_search_steps=15),
    "tnpg": dict(_PG, **_CG, max_kl=0.05),
    "vpg": dict(_PG, policy_lr=0.005),
    "cem": dict(_NET, population_size=100, elite_frac=0.1, init_std=1.0, extra_std=0.1, extra_decay_time=250.0),
}
# Per task category where the paper's grids differ and the choice is measured: TRPO's grid is {0.1, 0.03} on
# the basic tasks and {0.1, 0.08} on locomotion, each point chosen by mean - std on the category's tuning
# tasks (the double inverted pendulum; Swimmer, where the paper reports 0.1). On the double pendulum, full
# protocol, 5 seeds: 0.1 gave 4295.0 - 29.7, 0.03 gave 4423.9 - 74.5 (README), so 0.03 on the basic tasks.
BASIC_PROTOCOL = {"trpo": dict(max_kl=0.03)}
OFF_POLICY = ("ddpg",)
# The partially observed tasks (the paper: a 32-unit recurrent policy, 300 iterations): the gradient methods
# run their recurrent variants (a GRU where the paper had an LSTM); the others keep their MLP policies.
RECURRENT = {"trpo": "recurrent_trpo", "tnpg": "recurrent_tnpg", "vpg": "recurrent_vpg"}
PARTIAL_ITERATIONS = 300


def runs_as(algo: str, task: str) -> str:
    """The registered algorithm a trial of column ``algo`` runs on ``task``."""
    return RECURRENT.get(algo, algo) if task in PARTIAL else algo


def iterations_for(task: str, iterations: int | None) -> int:
    return iterations if iterations is not None else (PARTIAL_ITERATIONS if task in PARTIAL else 500)

# Published cells (mean, std) or means alone (../shared/paper-tables.md: TRPO's column, found so far).
PAPER = {
    "CartPoleBalancing-rllab": {"trpo": (4869.8, 37.6)},
    "MountainCar-rllab": {"trpo": -61.7},
    "DoubleInvertedPendulum-rllab": {"trpo": 4412.4},
    "Hopper-v5": {"trpo": 1183.3},
    "Walker2d-v5": {"trpo": 1353.8},
    "Humanoid-v5": {"trpo": 287.0},
    "AcrobotSwingUp-rllab-LS": {"trpo": -83.3},
    "CartPoleBalancing-rllab-NO": {"trpo": 606.2},
    "CartPoleSwingUp-rllab-NO": {"trpo": 10.4},
    "CartPoleBalancing-rllab-SI": {"trpo": 980.3},
    "MountainCar-rllab-SI": {"trpo": -61.6},
    "AcrobotSwingUp-rllab-SI": {"trpo": -170.9},
}


def parse_sets(items) -> dict:
    """``--set name=value`` pairs as a dict, the values read as Python literals (numbers, booleans, tuples)
    or else kept as strings."""
    import ast

    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set {item!r}: write name=value, e.g. --set max_kl=0.03.")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def protocol_config(algo, env, iterations: int, batch: int, ddpg_steps: int, sets: dict | None = None):
    """``algo``'s config for ``env`` at the protocol: its ``rllab`` preset (or ``PROTOCOL``) with the env,
    the batch (``num_envs x num_steps`` = ``batch``: 100 envs x 500 steps on JAX envs, 10 on host envs)
    and the number of iterations; then ``sets`` (``--set``: another point of the paper's grid, e.g.
    TRPO's ``max_kl=0.03``)."""
    if "rllab" in algo.presets:
        base, overrides = algo.presets["rllab"], {}
    elif algo.name in PROTOCOL:
        basic = BASIC_PROTOCOL.get(algo.name, {}) if env.id in BASIC else {}
        base, overrides = algo.Config(), {**PROTOCOL[algo.name], **basic}
    else:
        raise ConfigError(f"{algo.name} has no rllab protocol (no `rllab` preset). Algorithms: {', '.join(ALGOS)}.")
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(sets or {}) - fields)
    if unknown:
        raise ConfigError(f"--set {', '.join(unknown)}: not a hyperparameter of {algo.name} "
                          f"(see `surrogate train {algo.name} --help`).")
    overrides = {**{k: v for k, v in overrides.items() if k in fields}, **(sets or {})}
    config = dataclasses.replace(base, env=env.id, **overrides)
    if "iterations" in fields:  # population methods: one iteration = one population of episodes
        return dataclasses.replace(config, iterations=iterations).validate()
    if algo.name in OFF_POLICY:
        return dataclasses.replace(config, total_steps=min(iterations * batch, ddpg_steps)).validate()
    num_envs = 100 if env.backend == "jax" else 10
    if batch % num_envs:
        raise ConfigError(f"--batch {batch} must be a multiple of {num_envs} (envs per batch on this backend).")
    return dataclasses.replace(config, num_envs=num_envs, num_steps=batch // num_envs,
                               total_steps=iterations * batch).validate()


def make_env(task: str):
    from surrogate import envs

    return envs.make(task, max_episode_steps=500) if task in LOCOMOTION else envs.make(task)


def run_trial(trial: dict, checkpoint_dir: Path | None = None, chunks: int = 20) -> dict:
    """One algorithm on one task, ``trial["seeds"]`` seeds: the per-seed paper metric and curves.

    With ``checkpoint_dir``, the trial's whole state is saved there after each of ``chunks`` chunks of its
    iterations, and a trial that finds its checkpoint continues from it (the same trajectory on JAX envs)."""
    import jax

    from surrogate import checkpoint
    from surrogate.algos import get
    from surrogate.runtime.train import TrainResult

    algo, env = get(trial["runs"]), make_env(trial["task"])
    config = protocol_config(algo, env, trial["iterations"], trial["batch"], trial["ddpg_steps"], trial.get("set"))
    key, seeds = jax.random.PRNGKey(trial["seed"]), trial["seeds"]
    path = Path(checkpoint_dir) / f"{trial['name']}.msgpack" if checkpoint_dir else None
    previous = None
    if path is not None and path.is_file():
        state, history, _ = checkpoint.load(path, algo.state_template(config, env, key, seeds))
        previous = TrainResult(state, history, algo.steps_per_iteration(config, env))
    save = (lambda r, done: checkpoint.save(path, r.state, r.history, done)) if path is not None else None
    result = algo.train(config, env, key, seeds=seeds, resume=previous, logger=save,
                        chunk_updates=max(1, algo.num_iterations(config) // chunks))
    if path is not None:
        path.unlink(missing_ok=True)
    h = result.history
    sums, counts = h["episode_return_sum"], h["episode_count"]
    return dict(average_return_per_seed=table.average_return(sums, counts).tolist(),
                iteration_average_per_seed=table.iteration_average(sums, counts).tolist(),
                iteration_returns=table.iteration_returns(sums, counts).tolist(),
                iterations=int(sums.shape[1]), env_steps_per_seed=int(sums.shape[1] * result.steps_per_update),
                config=dataclasses.asdict(config))


def expand(names, groups: dict) -> list:
    return list(dict.fromkeys(x for n in names for x in groups.get(n, (n,))))


def make_trials(a) -> list:
    """The grid, checked before anything starts: every task must be an env id (any id ``surrogate envs``
    lists; the paper's are in ``GROUPS``) and every algorithm must have a protocol."""
    from surrogate.algos import get

    tasks, algos = expand(a.tasks, GROUPS), expand(a.algos, {"all": ALGOS})
    sets = parse_sets(getattr(a, "set", None))
    trials = [dict(name=f"{al}__{t}", algo=al, runs=runs_as(al, t), task=t, seeds=a.seeds, seed=a.seed,
                   iterations=iterations_for(t, a.iterations), batch=a.batch, ddpg_steps=a.ddpg_steps,
                   **({"set": sets} if sets else {}))
              for t in tasks for al in algos]
    for tr in trials:  # every config is made (and validated) here, before a trial starts
        protocol_config(get(tr["runs"]), make_env(tr["task"]), tr["iterations"], tr["batch"], tr["ddpg_steps"],
                        tr.get("set"))
    return trials


def write_table(out: Path, trials: list, command: str = "") -> dict:
    """``table.json``, ``table.md`` and ``curves.png`` from the finished trials of the grid: this command's
    and every other finished trial in ``out`` (a grid run in parts, e.g. ``--algos cem`` after the
    gradient methods, keeps one table); the same summary as ``<out>.json`` beside the folder (e.g.
    ``benchmarks/results/rllab_basic.json``)."""
    names = {t["name"] for t in trials}
    earlier = [json.loads(f.read_text())["trial"] for f in sorted((out / "trials").glob("*.json"))]
    trials = trials + [t for t in earlier if t["name"] not in names]
    results = grid.load_results(out, trials)
    for r in results:  # (trials written before this metric was recorded)
        if "iteration_average_per_seed" not in r:
            r["iteration_average_per_seed"] = table.nanmean(r["iteration_returns"], axis=1).tolist()
    tasks = list(dict.fromkeys(t["task"] for t in trials))
    algos = sorted(dict.fromkeys(t["algo"] for t in trials), key=lambda a: ALGOS.index(a) if a in ALGOS else len(ALGOS))
    summary = table.summarise(results, tasks, algos, PAPER)
    by_iteration = table.summarise(results, tasks, algos, PAPER, metric="iteration_average_per_seed")
    figures = dict(table=summary, table_iteration_average=by_iteration, trials=len(trials), finished=len(results),
                   date=time.strftime("%Y-%m-%d %H:%M:%S"))
    atomic_write(out / "table.json", (json.dumps(figures, indent=1) + "\n").encode())
    metric = ("the paper's metric (average return over all trajectories of all iterations) in `table`; the mean "
              "over iterations of each iteration's average return (rllab's AverageReturn) in `table_iteration_average`")
    import jax

    from surrogate import __version__, run

    provenance = dict(command=command, machine=run.machine_info(), versions={"surrogate": __version__, "jax": jax.__version__})
    atomic_write(out.parent / f"{out.name}.json", (json.dumps(
        dict(figures, metric=metric, folder=str(out), **provenance), indent=1) + "\n").encode())
    md = (f"The paper's metric: average return over all trajectories of all iterations\n\n{table.markdown(summary, algos)}"
          f"\nThe mean over iterations of each iteration's average return (rllab's AverageReturn)\n\n"
          f"{table.markdown(by_iteration, algos)}")
    atomic_write(out / "table.md", md.encode())
    if results:
        table.plot_curves(results, tasks, algos, out / "curves.png")
    return summary


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="surrogate bench rllab", description=__doc__.split("\n")[0])
    p.add_argument("--algos", nargs="+", default=["all"], help=f"of {', '.join(ALGOS)}, or all")
    p.add_argument("--tasks", nargs="+", default=["basic"], help="env ids, or groups: basic, partial, locomotion, hierarchical")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="base random seed (each trial splits it into --seeds keys)")
    p.add_argument("--iterations", type=int, default=None, help="default: 500, and 300 on the partially observed tasks")
    p.add_argument("--batch", type=int, default=50_000, help="env steps per iteration")
    p.add_argument("--ddpg-steps", type=int, default=1_000_000, help="env steps of a DDPG trial (at most)")
    p.add_argument("--out", default="runs/rllab", help="trial results, table.json/.md, curves.png")
    p.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--table-only", action="store_true", help="write the table from finished trials, run nothing")
    p.add_argument("--set", nargs="+", metavar="NAME=VALUE",
                   help="hyperparameters over the protocol's, for every trial (another grid point: use its own --out)")
    a = p.parse_args(argv)
    for name in ("seeds", "iterations", "batch", "ddpg_steps"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}.")
    trials, out = make_trials(a), Path(a.out)
    if not a.table_only:
        report = grid.run_grid(partial(run_trial, checkpoint_dir=(out / "checkpoints").resolve()), trials, out,
                               address=a.address, num_cpus=a.num_cpus, cpus_per_trial=a.cpus_per_trial)
        print(f"ran {len(report['ran'])}, skipped {len(report['skipped'])} finished, failed {len(report['failed'])}")
    write_table(out, trials, " ".join(["surrogate bench rllab", *argv]))
    print((out / "table.md").read_text(), end="")
    print(f"-> {out / 'table.json'}, {out / 'table.md'}, {out / 'curves.png'}, {out.parent / (out.name + '.json')}")
    return 1 if not a.table_only and report["failed"] else 0
