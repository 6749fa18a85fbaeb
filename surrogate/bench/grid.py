"""A grid of independent trials run as Ray Tune trials, resumable trial by trial.

Each trial is a dict of JSON values with a ``name``; ``run_trial(trial) -> dict`` runs it (in a Ray
worker) and its result is written atomically to ``<out>/trials/<name>.json``. A trial whose file exists
is finished and is never run again: rerunning the same grid runs only what is missing (trials that
failed, were killed with their worker, or were never started). While a trial runs, its worker's PID is
in ``<out>/running/<name>.pid``.

Ray (``ray`` 2.60): a local Ray with ``num_cpus`` CPUs by default, or the cluster at ``address``
(``ray://host:10001``, or ``auto``); every worker must have ``surrogate`` installed. Each trial takes
``cpus_per_trial`` CPUs; Ray schedules as many at once as the CPUs allow.
"""
import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable

from surrogate.checkpoint import atomic_write
from surrogate.errors import ConfigError


def trial_path(out: Path, name: str) -> Path:
    return Path(out) / "trials" / f"{name}.json"


def finished(out: Path, trials: list) -> list:
    """The trials whose result files exist."""
    return [t for t in trials if trial_path(out, t["name"]).is_file()]


def load_results(out: Path, trials: list) -> list:
    return [json.loads(trial_path(out, t["name"]).read_text()) for t in finished(out, trials)]


def run_and_write(run_trial: Callable, out: Path, trial: dict) -> dict:
    """Run one trial and write its result file (this is what a Ray worker executes)."""
    out = Path(out)
    pid = out / "running" / f"{trial['name']}.pid"
    pid.parent.mkdir(parents=True, exist_ok=True)
    pid.write_text(str(os.getpid()))
    t0 = time.perf_counter()
    result = {"trial": trial, **run_trial(trial)}
    result["wall_s"] = time.perf_counter() - t0
    atomic_write(trial_path(out, trial["name"]), (json.dumps(result, indent=1) + "\n").encode())
    pid.unlink(missing_ok=True)
    return result


def run_grid(run_trial: Callable, trials: list, out: Path, *, address: str | None = None, num_cpus: int | None = None,
             cpus_per_trial: float = 1.0, log: Callable = print) -> dict:
    """Run the trials of ``trials`` that have no result file yet as Ray Tune trials.

    Returns ``{"ran": [...], "skipped": [...], "failed": [...]}`` (trial names). A failed trial (an
    exception, or its worker killed) leaves no result file, so the next call runs it again."""
    names = [t["name"] for t in trials]
    if len(set(names)) != len(names):
        raise ConfigError("Trial names must be unique; two trials of the grid share a name.")
    out = Path(out).resolve()  # Ray Tune runs each trial in its own working directory
    done = {t["name"] for t in finished(out, trials)}
    pending = [t for t in trials if t["name"] not in done]
    for name in sorted(done):
        log(f"skip {name}: finished ({trial_path(out, name)})")
    if not pending:
        return {"ran": [], "skipped": sorted(done), "failed": []}
    import ray
    from ray import tune

    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        # Ray starts its processes by fork+exec, which the warning about forking a JAX process does not concern
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)

    def trainable(config):
        run_and_write(run_trial, out, config["trial"])
        tune.report({"finished": 1})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_trial}),
        param_space={"trial": tune.grid_search(pending)},
        run_config=tune.RunConfig(name=f"grid-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str((out / "ray").resolve()),
                                  failure_config=tune.FailureConfig(max_failures=0), verbose=0))
    try:
        tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    failed = [t["name"] for t in pending if not trial_path(out, t["name"]).is_file()]
    for name in failed:
        log(f"FAILED {name}: no result (see {out / 'ray'}); rerun the same command to run it again")
    return {"ran": [t["name"] for t in pending if t["name"] not in failed], "skipped": sorted(done), "failed": failed}
