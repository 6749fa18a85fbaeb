"""``surrogate train|eval|plot|envs|algos|bench``: a thin layer over the library.

User errors (``surrogate.errors.SurrogateError``) are printed without a traceback and exit 2.
"""
import argparse
import os
import sys
from pathlib import Path

from surrogate.errors import ConfigError, SurrogateError

USAGE = """usage: surrogate COMMAND ...

commands:
  train ALGO [options] [hyperparameters]   train into runs/<name>/ (see `surrogate train ppo --help`)
  eval RUN_DIR [--episodes N]               evaluate a run's final policies (deterministic)
  plot RUN_DIR... [--out PNG]               learning curves of one or more runs
  envs                                      environment ids by backend
  algos                                     available algorithms and their presets
  bench rllab [options]                     the rllab benchmark grid on Ray (see `surrogate bench rllab --help`)
"""


def _train(argv):
    if argv and argv[0] in ("reptile", "fomaml", "maml"):  # supervised meta-learning: its own loop and options
        from surrogate.meta.train import main as meta_train

        return meta_train(argv)
    import tyro

    from surrogate import algos, run
    from surrogate._jax_setup import set_compile_cache

    p = argparse.ArgumentParser(prog="surrogate train ALGO", add_help=False,
                                description="Run options; every other flag is a hyperparameter of ALGO.")
    p.add_argument("algo")
    p.add_argument("--preset", default=None, help="named hyperparameter set (see `surrogate algos`)")
    p.add_argument("--seeds", type=int, default=1, help="independent seeds, vmapped and sharded across CPU cores")
    p.add_argument("--seed", type=int, default=0, help="base random seed")
    p.add_argument("--name", default=None, help="run name (default ALGO-ENV)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run of the same name")
    p.add_argument("--checkpoint-every", type=int, default=None, help="updates between checkpoints")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--no-compile-cache", action="store_true", help="disable JAX's persistent compilation cache")
    p.add_argument("--no-progress", action="store_true")
    if not argv or argv[0] in ("-h", "--help"):
        p.print_help()
        return 0
    opts, rest = p.parse_known_args(argv)
    algorithm = algos.get(opts.algo)
    if opts.preset is not None and opts.preset not in algorithm.presets:
        raise ConfigError(f"Unknown preset {opts.preset!r} for {opts.algo}. Available: {', '.join(algorithm.presets)}.")
    default = algorithm.presets[opts.preset] if opts.preset else algorithm.Config()
    if "-h" in rest or "--help" in rest:  # the run options, then the hyperparameters
        p.print_help()
        print(f"\nhyperparameters of {opts.algo}:", flush=True)
        try:
            tyro.cli(algorithm.Config, default=default, args=["--help"], prog=f"surrogate train {opts.algo}")
        except SystemExit as e:
            return e.code
    if opts.no_compile_cache:
        set_compile_cache(False)
    if opts.eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {opts.eval_episodes}.")
    progress = not opts.no_progress and sys.stderr.isatty()
    if opts.resume:
        if rest:
            raise ConfigError(f"--resume continues the configuration saved in {opts.resume}; remove {' '.join(rest)} "
                              f"or start a new run.")
        run.train_in_dir(opts.resume, opts.algo, resume=True, eval_episodes=opts.eval_episodes, progress=progress)
        run_dir = Path(opts.resume)
    else:
        config = tyro.cli(algorithm.Config, default=default, args=rest, prog=f"surrogate train {opts.algo}")
        run_dir = Path(opts.runs_dir) / (opts.name or f"{opts.algo}-{config.env.replace('/', '_').replace(':', '_')}")
        run.train_in_dir(run_dir, opts.algo, config, opts.seeds, checkpoint_every=opts.checkpoint_every,
                         overwrite=opts.overwrite, eval_episodes=opts.eval_episodes, progress=progress, seed=opts.seed)
    _print_eval(run_dir)
    return 0


def _print_eval(run_dir: Path):
    import json

    report = json.loads((run_dir / "eval.json").read_text())
    per = ", ".join(f"{r:.1f}" for r in report["mean_return_per_seed"])
    print(f"{run_dir}: final return {report['mean_return']:.1f} +- {report['std_over_seeds']:.1f} over "
          f"{len(report['mean_return_per_seed'])} seeds ({report['episodes_per_seed']} evaluation episodes each: {per})")
    print(f"learning curve: {run_dir / 'curve.png'}")


def _eval(argv):
    from surrogate import run

    p = argparse.ArgumentParser(prog="surrogate eval")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=20)
    a = p.parse_args(argv)
    if a.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {a.episodes}.")
    algorithm, config, env, result, seeds = run.load_result(Path(a.run_dir))
    report = run.evaluate_seeds(algorithm, config, env, result, seeds, a.episodes)
    for i, r in enumerate(report["mean_return_per_seed"]):
        print(f"seed {i}: {r:.2f}")
    print(f"mean {report['mean_return']:.2f} +- {report['std_over_seeds']:.2f} ({a.episodes} episodes per seed)")
    if hasattr(algorithm, "baseline_report"):  # RL²: beside Gittins / the MDP baselines on the same task draws
        print("\n".join(algorithm.baseline_report(config, env, result, seeds, a.episodes)))
    return 0


def _plot(argv):
    from surrogate.run import plot_runs

    p = argparse.ArgumentParser(prog="surrogate plot")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default=None, help="PNG path (default: curves.png, or RUN_DIR/curve.png for one run)")
    a = p.parse_args(argv)
    out = a.out or (str(Path(a.run_dirs[0]) / "curve.png") if len(a.run_dirs) == 1 else "curves.png")
    print(plot_runs(a.run_dirs, Path(out)))
    return 0


def _envs(argv):
    from surrogate.envs import list_envs

    for backend, ids in list_envs().items():
        print(f"{backend} ({len(ids)}):")
        for i in ids:
            print(f"  {i}")
    return 0


def _algos(argv):
    from surrogate import algos

    for name in sorted(algos.ALGOS):
        print(f"{name}: presets {', '.join(algos.get(name).presets)}")
    for name in ("reptile", "fomaml", "maml"):
        print(f"{name}: supervised meta-learning, --data sine|digits|omniglot:PATH|miniimagenet:PATH")
    return 0


BENCHES = {"rllab": "surrogate.bench.rllab"}


def _bench(argv):
    import importlib

    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: surrogate bench {{{','.join(BENCHES)}}} [options]")
        return 0
    if argv[0] not in BENCHES:
        raise ConfigError(f"Unknown benchmark {argv[0]!r}. Available: {', '.join(BENCHES)}.")
    return importlib.import_module(BENCHES[argv[0]]).main(argv[1:])


COMMANDS = {"train": _train, "eval": _eval, "plot": _plot, "envs": _envs, "algos": _algos, "bench": _bench}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}.\n{USAGE}", file=sys.stderr)
        return 2
    try:
        code = COMMANDS[argv[0]](argv[1:])
        sys.stdout.flush()  # a closed pipe raises here rather than at exit
        return code
    except BrokenPipeError:  # `surrogate envs | head`: the reader is gone; stop quietly (Python docs, "Note on SIGPIPE")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SurrogateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with `surrogate train ALGO --resume RUN_DIR`.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
