"""Q-learning and actor-critics on MinAtar (Young & Tian 2019) through gymnax: learning curves, an rliable
aggregate, and DQN's training speed against rejax 0.1.3.

Learning (default mode): for each algorithm of ``--algos`` that the registry has (``surrogate.algos.get``)
and that has a ``minatar`` preset, on each game of ``--games``: ``--seeds`` seeds vmapped (and sharded)
in one jitted program per chunk of ``--chunk-frames`` frames, ``--frames`` frames per seed. Each
(game, algorithm) writes ``results/q_minatar/<game>_<algo>.json`` after every chunk (``complete``
false until the end), so a run cut off loses at most one chunk of the one in flight; ``--skip-done``
skips complete files. After every chunk the run's whole state (replay included) is saved under
``--checkpoint-dir`` (``runs/q_minatar``), and the next invocation with the same arguments continues it
on the same trajectory. ``--until-anchor``: a run stops once its seeds' mean score is at least MinAtar's DQN at
5M frames (``ANCHORS``) at two chunk ends in a row (what a budget short of 5M frames per seed can show);
its checkpoint stays.
The curve is MinAtar's README measure: per seed, the mean return of the last 100 training episodes that
finished, against frames (env steps of one seed).

``--plot``: reads every file, draws the curves (``curves.png``) and the aggregate (``aggregate.png``:
IQM over games x seeds of scores normalised per game by the MinAtar paper's DQN at 5M frames
(``ANCHORS``), with rliable 1.2.0's stratified-bootstrap 95% intervals, at the frames all four games
reached and at each game's final chunk), and writes the summary ``results/q_minatar.json``.

``--speed``: DQN on Breakout-MinAtar at the shared config (preset ``minatar``: one env, one update of
batch 32 per step, replay 100k, centered RMSprop, target copy every 1000) against rejax 0.1.3's DQN
on gymnax's Breakout-MinAtar with the same config (``peers/rejax_minatar.py`` in the peers' venv),
training time only, as ``dqn_cartpole.py`` measures: fresh processes, compile excluded, the fastest
warm call; one seed (``speedup_vs_rejax_sps``) and 16 seeds (``sixteen_seeds_speedup_vs_rejax``).

  python benchmarks/q_minatar.py --algos dqn --frames 1000000            # learning runs
  python benchmarks/q_minatar.py --plot                                  # figures + summary
  python benchmarks/q_minatar.py --speed                                 # quiet machine, ~15 min
  python benchmarks/q_minatar.py --speed --quick --out /tmp/q.json       # smoke test, not a measurement
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

from surrogate import checkpoint, envs  # noqa: E402
from surrogate.algos import get  # noqa: E402
from surrogate.errors import ConfigError  # noqa: E402
from surrogate.runtime import jax_driver  # noqa: E402

GAMES = ("Breakout", "SpaceInvaders", "Asterix", "Freeway")
ALGOS = ("dqn", "soft_dqn", "soft_q", "a2c", "bootstrapped_dqn", "ensemble_ucb", "ppo")
OUT_DIR = RESULTS / "q_minatar"
PEERS = HERE / "peers"
# ../shared/paper-tables.md, "MinAtar": read off the MinAtar README's curves at 5M frames (+-2% of each
# axis; 30 runs each), and gymnax's PPO (10M steps). MinAtar's envs have sticky actions (0.1) and the
# full action set; gymnax's have neither (minimal action sets) and cap episodes at 1000 steps (Freeway 2500).
ANCHORS = {
    "minatar_dqn_5M": {"Breakout": 10.0, "SpaceInvaders": 43.9, "Asterix": 16.8, "Freeway": 50.2},
    "minatar_ac_lambda_5M": {"Breakout": 17.6, "SpaceInvaders": 185.1, "Asterix": 18.3, "Freeway": 47.5},
    "gymnax_ppo_10M": {"Breakout": 28.0, "SpaceInvaders": 131.0, "Asterix": 15.0, "Freeway": 58.0},
}
WINDOW = 100  # episodes in the moving average (MinAtar's README)


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- learning curves


def curve(frames, sums, counts, at, window: int = WINDOW):
    """The mean return of the last ``window`` finished episodes at each frame of ``at`` (NaN before the
    first). ``frames, sums, counts``: per iteration that finished episodes, its last frame, the sum of
    their returns and their number (one env: one episode; several: their mean stands for each)."""
    frames, sums, counts = map(np.asarray, (frames, sums, counts))
    out = []
    for f in at:
        k = np.searchsorted(frames, f, side="right")  # iterations finished by frame f
        if k == 0:
            out.append(float("nan"))
            continue
        c = np.cumsum(counts[:k][::-1])
        j = min(int(np.searchsorted(c, window)), k - 1)  # enough iterations back to cover `window` episodes
        out.append(float(sums[k - 1 - j:k].sum() / counts[k - 1 - j:k].sum()))
    return out


def learning_run(a, name: str, game: str, path: Path):
    algo = get(name)
    if "minatar" not in algo.presets:
        raise ConfigError(f"{name} has no 'minatar' preset")
    env_id = f"{game}-MinAtar"
    config = dataclasses.replace(algo.presets["minatar"], env=env_id, total_steps=a.frames)
    config.validate()
    env = envs.make(env_id)
    per_iter = algo.steps_per_iteration(config, env)
    total_iters = algo.num_iterations(config)
    chunk = max(1, min(a.chunk_frames // per_iter, total_iters))
    keys = jax.random.split(jax.random.PRNGKey(a.seed), a.seeds)
    runner = jax_driver.initial_state(algo, config, env, keys)
    episodes = [[] for _ in range(a.seeds)]  # per seed: (frame, return sum, count) of iterations with episodes
    done, wall_before, programs = 0, 0.0, {}
    ckpt = (Path(a.checkpoint_dir) / f"{game}_{name}_seeds{a.seeds}_key{a.seed}_frames{a.frames}.msgpack"
            if a.checkpoint_dir else None)  # '': no checkpoints
    if ckpt and ckpt.is_file():  # continue the run a previous invocation left (same trajectory: the keys are in it)
        runner, history, done = checkpoint.load(ckpt, runner)
        episodes = [[tuple(r) for r in history[f"seed{s}"]] for s in range(a.seeds)]
        wall_before = float(history["wall_s"])
        log(f"{game} {name}: resumed at {done * per_iter:,} frames/seed from {ckpt}")
    t0, chunks = time.perf_counter(), 0
    while done < total_iters and chunks != a.max_chunks:
        chunks += 1
        n = min(chunk, total_iters - done)
        if n not in programs:
            programs[n] = jax_driver.train_program(algo, config, env, a.seeds, n, donate=True)
        runner, metrics = programs[n](runner)
        m = jax.device_get(metrics)
        rs, cs = np.asarray(m["episode_return_sum"]), np.asarray(m["episode_count"])
        for s in range(a.seeds):
            (idx,) = np.nonzero(cs[s] > 0)
            episodes[s] += [((done + i + 1) * per_iter, float(rs[s, i]), float(cs[s, i])) for i in idx]
        done += n
        frames_done = done * per_iter
        at = list(range(a.curve_every, frames_done + 1, a.curve_every))
        curves = [curve(*zip(*e), at) if e else [float("nan")] * len(at) for e in episodes]
        final = [c[-1] if c else float("nan") for c in curves]
        wall = wall_before + time.perf_counter() - t0
        anchor = ANCHORS["minatar_dqn_5M"][game]  # --until-anchor: at this chunk's end and the previous one's
        k = sum(f <= (done - n) * per_iter for f in at)  # the curve's points up to the previous chunk's end
        before = [c[k - 1] for c in curves] if k > 0 and done > n else []
        reached = (a.until_anchor and done < total_iters and float(np.nanmean(final)) >= anchor
                   and len(before) > 0 and float(np.nanmean(before)) >= anchor)
        if ckpt and done < total_iters:  # kept when stopped at the anchor: a later run without the flag continues it
            history = {f"seed{s}": np.asarray(e, np.float64).reshape(-1, 3) for s, e in enumerate(episodes)}
            checkpoint.save(ckpt, runner, {**history, "wall_s": np.asarray(wall)}, done)
        elif ckpt:
            ckpt.unlink(missing_ok=True)
        result = dict(game=game, env=env_id, algo=name, seeds=a.seeds, frames_per_seed=frames_done,
                      frames_target=a.frames, complete=done >= total_iters or reached, wall_s=wall,
                      stopped_at_anchor=bool(reached), until_anchor=bool(a.until_anchor),
                      frames_per_s_all_seeds=frames_done * a.seeds / wall, curve_frames=at, curves=curves,
                      final_return_per_seed=final, final_return_mean=float(np.nanmean(final)),
                      episodes_per_seed=[int(sum(c for *_, c in e)) for e in episodes],
                      score="mean return of the last 100 finished training episodes (MinAtar's README)",
                      config=dataclasses.asdict(config), anchors={k: v[game] for k, v in ANCHORS.items()})
        write_result(path, result)
        log(f"{game} {name}: {frames_done:,} frames/seed, last-100 return {np.round(final, 2).tolist()}, "
            f"{wall:.0f} s")
        if reached:
            log(f"{game} {name}: seed mean {np.nanmean(before):.2f}, then {np.nanmean(final):.2f} >= MinAtar DQN's 5M-frame {anchor}; stopped "
                f"(--until-anchor) at {frames_done:,} frames/seed")
            break


def learning(a):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in a.algos:
        try:
            get(name)
        except (ConfigError, ImportError, AttributeError) as e:
            log(f"skip {name}: not in the registry ({e})")
            continue
        for game in a.games:
            path = OUT_DIR / f"{game}_{name}.json"
            old = json.loads(path.read_text()) if path.exists() else {}
            if (a.skip_done and old.get("complete") and old.get("frames_target") == a.frames and old.get("seeds") == a.seeds
                    and (a.until_anchor or not old.get("stopped_at_anchor"))):
                log(f"skip {path.name}: complete")
                continue
            try:
                learning_run(a, name, game, path)
            except ConfigError as e:
                log(f"skip {name} on {game}: {e}")
                break


# ----------------------------------------------------------------------------- plots and summary


def load_results() -> list:
    return [json.loads(p.read_text()) for p in sorted(OUT_DIR.glob("*.json"))]


def ran_on(machine: dict) -> str:
    """Where a result file's run went: the GPU's name, else the CPU's cores."""
    gpu = machine.get("gpu")
    return gpu.split(":")[1].split("(")[0].strip() if gpu else f"CPU, {machine['cores']} cores"


def plot(a):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import metrics as rlm

    results = load_results()
    if not results:
        sys.exit(f"no result files in {OUT_DIR}")
    algos = sorted({r["algo"] for r in results}, key=lambda n: ALGOS.index(n) if n in ALGOS else 99)
    fig, axes = plt.subplots(1, len(GAMES), figsize=(4.2 * len(GAMES), 3.4))
    for ax, game in zip(axes, GAMES):
        for r in (r for r in results if r["game"] == game):
            x, ys = np.asarray(r["curve_frames"]) / 1e6, np.asarray(r["curves"], float)
            mean = np.nanmean(ys, 0)
            line, = ax.plot(x, mean, label=f"{r['algo']} ({r['seeds']} seeds)")
            ax.fill_between(x, np.nanmin(ys, 0), np.nanmax(ys, 0), alpha=0.2, color=line.get_color())
        for (k, v), style in zip(ANCHORS.items(), (":", "--", "-.")):
            ax.axhline(v[game], color="gray", ls=style, lw=1, label=k.replace("_", " "))
        ax.set_title(f"{game}-MinAtar")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("frames (millions)")
    axes[0].set_ylabel("mean return, last 100 episodes")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT_DIR / "curves.png", dpi=120)

    # aggregate, two views, each normalised per game by MinAtar DQN at 5M frames, games x seeds, IQM with
    # rliable's stratified-bootstrap 95% intervals: "common" takes every game's curve at the frames all four
    # reached (like for like within an algorithm); "final" takes each game's last chunk (what --until-anchor
    # runs end with, whatever frames each game needed)
    dqn_anchor = ANCHORS["minatar_dqn_5M"]
    views = {"common": {}, "final": {}}
    frames = {}
    for name in algos:
        rows = {r["game"]: r for r in results if r["algo"] == name}
        if set(rows) != set(GAMES):
            log(f"aggregate: {name} lacks {sorted(set(GAMES) - set(rows))}; left out")
            continue
        seeds = min(len(rows[g]["final_return_per_seed"]) for g in GAMES)
        frames[name] = min(rows[g]["frames_per_seed"] for g in GAMES)
        at = {g: max(i for i, f in enumerate(rows[g]["curve_frames"]) if f <= frames[name]) for g in GAMES}
        views["common"][name] = np.array([[rows[g]["curves"][s][at[g]] / dqn_anchor[g] for g in GAMES]
                                          for s in range(seeds)])
        views["final"][name] = np.array([[rows[g]["final_return_per_seed"][s] / dqn_anchor[g] for g in GAMES]
                                         for s in range(seeds)])
    summary = dict(normalisation="score / MinAtar DQN at 5M frames (paper-tables.md), per game; 'aggregate': "
                                 "at the frames all 4 games reached; 'aggregate_final': each game's final chunk",
                   statistic="IQM over games x seeds, rliable 1.2.0 stratified bootstrap 95% CI",
                   games=list(GAMES), frames_per_seed=frames, per_game={}, aggregate={}, aggregate_final={})
    for r in results:
        summary["per_game"][f"{r['game']}_{r['algo']}"] = dict(
            final_return_mean=r["final_return_mean"], final_return_per_seed=r["final_return_per_seed"],
            frames_per_seed=r["frames_per_seed"], complete=r["complete"], seeds=r["seeds"],
            stopped_at_anchor=r.get("stopped_at_anchor", False), ran_on=ran_on(r["machine"]),
            minatar_dqn_5M=dqn_anchor[r["game"]], ratio_to_minatar_dqn_5M=r["final_return_mean"] / dqn_anchor[r["game"]],
            note="" if r["frames_per_seed"] >= 5_000_000 else
            f"stopped (--until-anchor) at {r['frames_per_seed']:,} frames per seed, the seeds' mean at least "
            f"MinAtar DQN's 5M-frame value there and at the chunk end before" if r.get("stopped_at_anchor") else
            f"at {r['frames_per_seed']:,} frames per seed, fewer than the anchor's 5M: not a like-for-like comparison")
    if frames:
        fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.5 * len(frames)), sharey=True)
        for ax, (view, key) in zip(axes, (("common", "aggregate"), ("final", "aggregate_final"))):
            point, cis = rly.get_interval_estimates(views[view], lambda x: np.array([rlm.aggregate_iqm(x)]),
                                                    reps=a.reps)
            for i, k in enumerate(frames):
                summary[key][k] = dict(iqm=float(point[k][0]), ci95=[float(cis[k][0, 0]), float(cis[k][1, 0])],
                                       frames_per_seed=frames[k] if view == "common" else
                                       {r["game"]: r["frames_per_seed"] for r in results if r["algo"] == k})
                ax.plot([cis[k][0, 0], cis[k][1, 0]], [i, i], lw=6, alpha=0.5)
                ax.plot(point[k][0], i, "k|", ms=14)
            ax.axvline(1.0, color="gray", ls=":", lw=1)
            ax.set_title("at the frames all 4 games reached" if view == "common" else "each game's final chunk",
                         fontsize=9)
            ax.set_xlabel("IQM of score / MinAtar DQN at 5M frames\n(95% stratified-bootstrap CI, rliable)")
        axes[0].set_yticks(range(len(frames)), [f"{k} ({frames[k] / 1e6:g}M frames)" for k in frames])
        fig.tight_layout()
        fig.savefig(OUT_DIR / "aggregate.png", dpi=120)
    import rliable

    out = Path(a.out)
    old = json.loads(out.read_text()) if out.exists() else {}
    speed = {k: v for k, v in old.items() if k not in summary and k not in ("command", "date", "machine", "versions")}
    if "speedup_vs_rejax_sps" in old and "speed_command" not in old:  # the speed figures keep their provenance
        speed.update(speed_command=old["command"], speed_date=old["date"])
    write_result(out, {**speed, **summary}, extra_versions={"rliable": getattr(rliable, "__version__", "1.2.0")})
    log(f"wrote {a.out}, {OUT_DIR / 'curves.png'}, {OUT_DIR / 'aggregate.png'}")


# ----------------------------------------------------------------------------- speed against rejax


def our_speed(seeds: int, total: int, repeats: int) -> dict:
    algo = get("dqn")
    config = dataclasses.replace(algo.presets["minatar"], total_steps=total)
    run = time_whole_run(algo, config, envs.make(config.env), seeds, repeats)
    warm, steps = run["times"][1:], run["steps_per_seed"]
    return dict(lib="surrogate", seeds=seeds, steps_per_seed=steps, compile_s=run["compile_s"],
                first_call_s=run["times"][0], warm_call_s=warm, sps_total_best=steps * seeds / min(warm),
                sps_total_median=steps * seeds / float(np.median(warm)), devices=str(jax.devices()),
                load=os.getloadavg())


def best(runs: list) -> dict:
    warm = [t for r in runs for t in r["warm_call_s"]]
    steps = runs[0]["steps_per_seed"] * runs[0].get("seeds", runs[0].get("nseeds"))
    return dict(runs[-1], warm_call_s=warm, sps_total_best=steps / min(warm),
                sps_total_median=steps / float(np.median(warm)), rounds=runs)


def speed(a):
    peers_py = Path(a.peers_python)
    if not peers_py.exists():
        sys.exit(f"peers python {peers_py} not found: pass --peers-python")
    total, many_total = (6_000, 6_000) if a.quick else (a.speed_total, a.sixteen_total)
    repeats, rounds, many = (1, 1, 4) if a.quick else (2, 3, 16)
    me = [sys.executable, __file__, "--worker"]
    ours_env = dict(ORIG_ENV, SURROGATE_COMPILE_CACHE="0")
    peer_env = {k: v for k, v in ORIG_ENV.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    r = {"rejax_1": [], "ours_1": []}
    t0, load_before = time.perf_counter(), os.getloadavg()
    for i in range(rounds):  # alternating fresh processes: a slow spell of the machine hits both sides
        log(f"round {i + 1}/{rounds}: rejax, 1 seed, {total} steps")
        r["rejax_1"].append(run_json([peers_py, PEERS / "rejax_minatar.py", 1, total, repeats], peer_env, "rejax"))
        log(f"round {i + 1}/{rounds}: ours, 1 seed")
        r["ours_1"].append(run_json(me + ["--seeds", 1, "--total", total, "--repeats", repeats], ours_env, "ours"))
    r = {k: best(v) for k, v in r.items()}
    log(f"rejax, {many} seeds vmapped, {many_total} steps each")
    r["rejax_n"] = run_json([peers_py, PEERS / "rejax_minatar.py", many, many_total, 1], peer_env, "rejax many")
    log(f"ours, {many} seeds, {many_total} steps each")
    r["ours_n"] = run_json(me + ["--seeds", many, "--total", many_total, "--repeats", 1], ours_env, "ours many")
    f = dict(speedup_vs_rejax_sps=r["ours_1"]["sps_total_best"] / r["rejax_1"]["sps_total_best"],
             sixteen_seeds_speedup_vs_rejax=r["ours_n"]["sps_total_best"] / r["rejax_n"]["sps_total_best"],
             our_sps_1seed=r["ours_1"]["sps_total_best"], rejax_sps_1seed=r["rejax_1"]["sps_total_best"],
             our_sps_total_sixteen_seeds=r["ours_n"]["sps_total_best"],
             rejax_sps_total_sixteen_seeds=r["rejax_n"]["sps_total_best"],
             compile_s=r["ours_1"]["compile_s"], rejax_compile_s=r["rejax_1"]["compile_s"],
             settings=dict(quick=a.quick, env="Breakout-MinAtar", total_steps_single_seed=total,
                           sixteen_seeds=many, total_steps_sixteen_seeds=many_total, rounds_single_seed=rounds,
                           config=dataclasses.asdict(get("dqn").presets["minatar"]),
                           sps_statistic="fastest warm call of fresh processes, training only"),
             raw=r, benchmark_wall_s=time.perf_counter() - t0, load_avg_before_after=[load_before, os.getloadavg()])
    out = Path(a.out)
    if out.exists() and out.resolve() == (RESULTS / "q_minatar.json").resolve():  # keep the learning summary
        f = {**json.loads(out.read_text()), **f}
    write_result(out, f, extra_versions={"peers": r["rejax_1"].get("versions", {})})
    log(f"speedup one seed {f['speedup_vs_rejax_sps']:.2f}x, {many} seeds {f['sixteen_seeds_speedup_vs_rejax']:.2f}x"
        f" -> {out}")


def main():
    global OUT_DIR
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algos", nargs="+", default=list(ALGOS))
    p.add_argument("--games", nargs="+", default=list(GAMES), choices=GAMES)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="base key of the seeds")
    p.add_argument("--frames", type=int, default=5_000_000, help="frames (env steps) per seed")
    p.add_argument("--chunk-frames", type=int, default=100_000, help="frames per jitted chunk (and result write)")
    p.add_argument("--curve-every", type=int, default=25_000, help="frames between curve points")
    p.add_argument("--skip-done", action="store_true")
    p.add_argument("--until-anchor", action="store_true",
                   help="stop a run once its seeds' mean last-100 return is at least MinAtar DQN's 5M-frame value at "
                        "two chunk ends in a row (at most --frames); its checkpoint stays, so a run without the flag "
                        "continues it")
    p.add_argument("--max-chunks", type=int, default=-1, help="stop each run after this many chunks (resume later)")
    p.add_argument("--checkpoint-dir", default=str(HERE.parent / "runs" / "q_minatar"),
                   help="each unfinished run's state after every chunk; the next invocation continues it "
                        "('': none, for a run that will not be resumed)")
    p.add_argument("--plot", action="store_true")
    p.add_argument("--reps", type=int, default=50_000, help="bootstrap replications (rliable)")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--quick", action="store_true", help="with --speed: tiny runs, a smoke test")
    p.add_argument("--speed-total", type=int, default=50_000, help="steps of the one-seed speed runs")
    p.add_argument("--sixteen-total", type=int, default=20_000, help="steps per seed of the 16-seed speed runs")
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--out", default=str(RESULTS / "q_minatar.json"))
    p.add_argument("--out-dir", default=str(RESULTS / "q_minatar"), help="per-run files, curves.png, aggregate.png")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--total", type=int, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    OUT_DIR = Path(a.out_dir)
    if a.worker:
        print(json.dumps(our_speed(a.seeds, a.total, a.repeats)), flush=True)
    elif a.plot:
        plot(a)
    elif a.speed:
        speed(a)
    else:
        learning(a)


if __name__ == "__main__":
    main()
