"""PPO on Atari Pong (``ALE/Pong-v5``, preset ``atari``: CleanRL's ``ppo_atari.py`` settings, 8 envs x 128
steps, 4 epochs x 4 minibatches), against Stable-Baselines3 2.9.2 PPO ``CnnPolicy`` (torch CPU) at the same
settings, and against the raw rate of ale-py's vectorized env.

  python benchmarks/atari.py --speed [--updates 12]   # training steps/s: ours, SB3, raw; profiles of both
  python benchmarks/atari.py --learn [--max-steps 4000000] [--piece-steps 1000000]
                                                      # train seed 0 until the 100-episode mean reaches 18
  python benchmarks/atari.py --summary                # rebuild atari.json's learning keys from the run
  python benchmarks/atari.py --speed --quick          # a short check of the script (figures not written)
  python benchmarks/atari.py --learn --quick          # a tiny resumable run in /tmp (nothing written here)

Speed (``--speed``, one process, same machine, run it on a quiet one): ours is ``training_rate`` (rollout
+ update of ``1 + updates`` updates minus a 1-update run, compile excluded); SB3's is its ``learn`` time
for the same number of steps (``benchmarks/peers/sb3_ppo_atari.py``, in the peers' venv, torch's default
threads); the raw rate is ale-py's ``AtariVectorEnv`` behind our adapter, 8 envs, random actions. The
profiles split one iteration into env steps, acting forward passes and the update (ours: ``profile``;
SB3's: time inside ``VecEnv.step``, inside ``collect_rollouts`` otherwise, and inside ``train``).

Learning (``--learn``): ``surrogate train ppo --preset atari`` into ``runs/atari-pong-seed0`` (the 10M-step
schedule of CleanRL's run, its learning rate annealed over 10M steps as theirs), resumed from the latest
checkpoint by the next invocation (checkpoints every 50 updates, 51k steps; stop it any time); stops when
the mean game score of the last 100 training episodes reaches 18 or at ``--max-steps``. The curve (mean
score of the last 100 episodes at each update that ends one) goes to
benchmarks/results/atari_pong_seed0.json; ``pong_final_return`` and the steps to 18 to atari.json.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from atari_envs import rate  # noqa: E402
from common import RESULTS, run_json, write_result  # noqa: E402
from mujoco_common import training_rate  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import ppo  # noqa: E402

ENV = "ALE/Pong-v5"
RUN = Path("runs/atari-pong-seed0")
CURVE = RESULTS / "atari_pong_seed0.json"
TARGET = 18.0
# CleanRL ppo_atari.py, PongNoFrameskip-v4, 3 seeds, 10M agent steps (docs.cleanrl.dev, ppo_atari.py section;
# the learning curves are plotted there).
CLEANRL = {"ppo_atari_10M_return": 20.36, "ppo_atari_10M_std": 0.20, "dqn_atari_10M_return": 20.25,
           "dqn_atari_10M_std": 0.41}


# ----------------------------------------------------------------------------- speed


def profile(config, iterations: int = 3) -> dict:
    """Seconds per iteration (``num_envs x num_steps`` agent steps) in env steps, acting forward passes
    and the update (``prepare`` + epochs: the jitted ``learn``), each timed alone on a warm process as
    ``host_rollout`` and ``learn`` run them (the mean of ``iterations`` after one warm-up)."""
    from surrogate.runtime import host_driver
    from surrogate.runtime.iteration import spec_of
    from surrogate.runtime.rollout import Experience, host_rollout

    env = envs.make(config.env)
    algo = ppo.ALGO
    venv = env.vector(config.num_envs, seed=0)
    runner = host_driver.init_runner(algo, config, env, jax.random.PRNGKey(0), venv)
    learn = host_driver.learn_fn(algo, config, env)
    spec = spec_of(algo, config, env)
    state, times = runner.algo, {"env_s": [], "act_s": [], "update_s": [], "iteration_s": []}
    for i in range(iterations + 1):
        rng = np.random.default_rng(i)
        act_np = host_driver.host_acting(algo, config, env, algo.policy(config, state), runner.env.obs_stats, rng)
        act_time = [0.0]

        def timed_act(obs, carry):
            t = time.perf_counter()
            out = act_np(obs, carry)
            act_time[0] += time.perf_counter() - t
            return out

        t0 = time.perf_counter()
        carry, batch, _ = host_rollout(spec, venv, timed_act, runner.env)
        t1 = time.perf_counter()
        state, metrics, _ = learn(state, Experience(batch, jax.tree.map(np.asarray, carry.obs_stats)),
                                  jax.random.PRNGKey(i))
        jax.block_until_ready((state, metrics))
        t2 = time.perf_counter()
        runner = runner._replace(env=carry)
        if i:  # the first compiles
            times["act_s"].append(act_time[0])
            times["env_s"].append(t1 - t0 - act_time[0])
            times["update_s"].append(t2 - t1)
            times["iteration_s"].append(t2 - t0)
    venv.close()
    out = {k: round(float(np.mean(v)), 3) for k, v in times.items()}
    out["steps_per_iteration"] = config.batch_size
    return out


def speed(updates: int, peers_python: str | None, quick: bool) -> dict:
    config = ppo.PRESETS["atari"]
    figures = {}
    venv = envs.make(ENV).vector(config.num_envs, seed=0)
    figures["raw_vector_ale_sps"] = round(rate(venv, 100 if quick else 2000, config.num_envs))
    venv.close()
    print(f"raw AtariVectorEnv x{config.num_envs}: {figures['raw_vector_ale_sps']:,} steps/s", flush=True)
    figures["ours_sps"] = round(training_rate(ppo, config, updates), 1)
    print(f"ours: {figures['ours_sps']} steps/s", flush=True)
    figures["ours_profile_s_per_iteration"] = profile(config, 1 if quick else 3)
    print(f"ours, per iteration: {figures['ours_profile_s_per_iteration']}", flush=True)
    if peers_python:
        total = updates * config.batch_size
        sb3 = run_json([peers_python, "benchmarks/peers/sb3_ppo_atari.py", "--total", total], dict(os.environ),
                       "SB3 PPO CnnPolicy")
        print(f"SB3: {sb3}", flush=True)
        figures.update(sb3_sps=sb3["sps"], sb3_raw_wrapped_vec8_sps=sb3["raw_wrapped_vec8_sps"],
                       sb3_threads=sb3["threads"], sb3_profile_s_per_iteration=sb3["profile_s_per_iteration"],
                       speedup_vs_sb3_sps=round(figures["ours_sps"] / sb3["sps"], 3))
        figures["versions_peer"] = sb3["versions"]
    figures["fraction_of_raw"] = round(figures["ours_sps"] / figures["raw_vector_ale_sps"], 3)
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


# ----------------------------------------------------------------------------- learning


def curve(history, batch_size: int) -> dict:
    """Per update: env steps and the mean game score of the last 100 training episodes (from the per-update
    episode sums and counts; an update's episodes are taken whole, so a window holds 100 or a few more)."""
    ret, cnt = np.asarray(history["episode_return_sum"][0]), np.asarray(history["episode_count"][0])
    steps, means = [], []
    for i in range(len(ret)):
        if cnt[i] == 0:
            continue
        total, n, j = 0.0, 0, i
        while j >= 0 and n < 100:
            total, n, j = total + ret[j], n + cnt[j], j - 1
        steps.append((i + 1) * batch_size)
        means.append(round(total / n, 2) if n >= 100 else None)  # None: fewer than 100 episodes so far
    return {"env_steps": steps, "last100_mean_return": means}


def steps_to(c: dict, target: float):
    return next((s for s, m in zip(c["env_steps"], c["last100_mean_return"]) if m is not None and m >= target), None)


def learn(run_dir: Path, max_steps: int, piece_steps: int, quick: bool) -> None:
    from surrogate import run

    config = ppo.PRESETS["atari"]
    if quick:  # two pieces of 2 updates: the second resumes the first's checkpoint
        config = dataclasses.replace(config, num_envs=2, num_steps=32, num_minibatches=2, total_steps=256)
    max_updates = min(max_steps // config.batch_size, ppo.ALGO.num_iterations(config))
    piece = max(1, piece_steps // config.batch_size)
    while True:
        resume = (run_dir / "checkpoints" / "latest.msgpack").is_file()
        history = run.load_result(run_dir)[3].history if resume else None
        updates_done = 0 if history is None else len(history["episode_count"][0])
        c = curve(history, config.batch_size) if history is not None else {"env_steps": [], "last100_mean_return": []}
        reached = steps_to(c, TARGET)
        print(f"{run_dir}: {updates_done} updates done; last-100 mean "
              f"{next((m for m in reversed(c['last100_mean_return']) if m is not None), None)}", flush=True)
        if history is not None:  # (--quick: into the run directory, not benchmarks/results)
            write_curve(c, updates_done * config.batch_size, run_dir if quick else RESULTS)
        if reached is not None or updates_done >= max_updates:
            why = (f"the last-100 mean first reached {TARGET} at {reached:,} agent steps" if reached is not None
                   else f"{updates_done * config.batch_size:,} agent steps, the cap")
            print(f"{run_dir}: {why}; done", flush=True)
            return
        n = min(piece, max_updates - updates_done)
        if resume:
            run.train_in_dir(run_dir, "ppo", resume=True, stop_after=n)
        else:
            run.train_in_dir(run_dir, "ppo", config, checkpoint_every=2 if quick else 50, stop_after=n)


def write_curve(c: dict, steps_done: int, out: Path = RESULTS) -> None:
    last = next((m for m in reversed(c["last100_mean_return"]) if m is not None), None)
    reached = steps_to(c, TARGET)
    fig = {"env": ENV, "seed": 0, "preset": "atari", "steps_done": steps_done, "target": TARGET,
           "steps_to_target": reached, "last100_mean_return": last, **c, "cleanrl": CLEANRL}
    write_result(out / CURVE.name, fig)
    old = json.loads((out / "atari.json").read_text()) if (out / "atari.json").is_file() else {}
    summary = {k: v for k, v in old.items() if k not in ("command", "date", "machine", "versions")}
    if "speedup_vs_sb3_sps" in old and "speed_command" not in old:  # the speed figures keep their provenance
        summary.update(speed_command=old["command"], speed_date=old["date"])
    summary.update(pong_final_return=last, pong_steps_to_18=reached, pong_steps_done=steps_done,
                   cleanrl_ppo_atari_10M_return=CLEANRL["ppo_atari_10M_return"])
    write_result(out / "atari.json", summary)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speed", action="store_true")
    p.add_argument("--learn", action="store_true")
    p.add_argument("--summary", action="store_true")
    p.add_argument("--updates", type=int, default=12, help="timed updates (of 1024 steps) for the speed figures")
    p.add_argument("--peers-python", default=".venv-peers/bin/python")
    p.add_argument("--run-dir", default=str(RUN))
    p.add_argument("--max-steps", type=int, default=4_000_000)
    p.add_argument("--piece-steps", type=int, default=1_000_000, help="steps between checks of the target")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.speed:
        figures = speed(2 if a.quick else a.updates, a.peers_python if Path(a.peers_python).exists() else None,
                        a.quick)
        print(json.dumps(figures))
        if not a.quick:
            old = json.loads((RESULTS / "atari.json").read_text()) if (RESULTS / "atari.json").is_file() else {}
            keep = {k: v for k, v in old.items() if k.startswith(("pong_", "cleanrl_"))}  # (speed_*: replaced)
            import ale_py

            write_result(RESULTS / "atari.json", {**keep, **figures}, {"ale_py": ale_py.__version__})
    if a.learn:
        run_dir = Path("/tmp/surrogate-atari-quick") if a.quick else Path(a.run_dir)
        if a.quick and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        learn(run_dir, 512 if a.quick else a.max_steps, 128 if a.quick else a.piece_steps, a.quick)
    if a.summary:
        from surrogate import run

        history = run.load_result(Path(a.run_dir))[3].history
        batch = ppo.PRESETS["atari"].batch_size
        write_curve(curve(history, batch), len(history["episode_count"][0]) * batch)


if __name__ == "__main__":
    main()
