"""RL²'s policy updates against sb3-contrib's RecurrentPPO on the same trial shape (``Bandit-k5-n10-rl2``:
128 trials x 10 steps per update, 8 epochs x 4 minibatches, recurrent cores of 128 for actor and critic),
measured in one run, rounds alternating, ratios within the script (the machine's load changes).

  .venv/bin/python benchmarks/rl2_speed.py [--updates 20] [--rounds 2]

Ours: a whole run of ``--updates`` updates as the JAX driver's one compiled program (``time_whole_run``),
and the update alone (``rl2.ALGO.learn`` jitted, on one rollout's experience). Peer
(``peers/sb3c_rl2_bandit.py``, the peers' venv, 1 torch thread, as one JAX seed uses one core): its
``learn`` and its ``train()`` alone. Differs: sb3-contrib has LSTMs where we have GRUs (4 gates vs 3).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from common import RESULTS, run_json, time_whole_run, write_result

PEER = Path(__file__).parent / "peers" / "sb3c_rl2_bandit.py"
PEER_PY = Path(__file__).parent.parent / ".venv-peers" / "bin" / "python"


def ours(updates: int, repeats: int = 3):
    import jax

    from surrogate import envs
    from surrogate.algos import rl2
    from surrogate.runtime import jax_driver
    from surrogate.runtime.rollout import Experience, jax_rollout, rollout_spec

    cfg = rl2.Config(arms=5, episodes=10)
    cfg = cfg.__class__(**{**vars(cfg), "total_steps": updates * cfg.batch_size})
    env = envs.make(cfg.env)
    whole = time_whole_run(rl2.ALGO, cfg, env, 1, 1)
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(rl2.ALGO, cfg, env, jax.random.PRNGKey(0)[None]))
    spec = rollout_spec(cfg, env, rl2.ALGO.act_words(cfg, env))
    carry, batch, _ = jax.jit(lambda c, k: jax_rollout(spec, env, rl2.ALGO.act(cfg, env, False), runner.algo.params,
                                                       c, k, start=True))(runner.env, jax.random.PRNGKey(1))
    exp = Experience(batch, carry.obs_stats)
    learn = jax.jit(lambda s, e, k: rl2.ALGO.learn(cfg, env, s, e, k))
    jax.block_until_ready(learn(runner.algo, exp, jax.random.PRNGKey(2)))
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(learn(runner.algo, exp, jax.random.PRNGKey(3 + i)))
        times.append(time.perf_counter() - t)
    return dict(sps=whole["steps_per_seed"] / min(whole["times"]), compile_s=whole["compile_s"],
                update_s=float(np.median(times)))


def peer(updates: int):
    out = run_json([PEER_PY, PEER, 1, 0, updates], dict(os.environ), "sb3-contrib RecurrentPPO")
    return dict(sps=out["sps"], update_s=float(np.median(out["update_s"])), versions=out["versions"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
    rounds = []
    for r in range(a.rounds):
        rounds.append(dict(ours=ours(a.updates), peer=peer(max(3, a.updates // 4)), load=os.getloadavg()))
        print(rounds[-1], flush=True)
    best = lambda side, k, f: f(x[side][k] for x in rounds)
    figures = dict(
        ours_steps_per_s=best("ours", "sps", max), peer_steps_per_s=best("peer", "sps", max),
        ours_update_s=best("ours", "update_s", min), peer_update_s=best("peer", "update_s", min),
        rounds=[{**r, "peer": {k: v for k, v in r["peer"].items() if k != "versions"}} for r in rounds],
        note="best of the rounds; one JAX seed (one core) vs sb3-contrib with 1 torch thread; the machine was "
             "shared with other jobs (load in each round)")
    figures["update_speedup"] = figures["peer_update_s"] / figures["ours_update_s"]
    figures["training_speedup"] = figures["ours_steps_per_s"] / figures["peer_steps_per_s"]
    write_result(RESULTS / "rl2_speed.json", figures, {"peer": rounds[-1]["peer"]["versions"]})
    print(f"update: ours {figures['ours_update_s']:.3f} s vs sb3-contrib {figures['peer_update_s']:.3f} s "
          f"({figures['update_speedup']:.1f}x); training: {figures['ours_steps_per_s']:.0f} vs "
          f"{figures['peer_steps_per_s']:.0f} steps/s ({figures['training_speedup']:.1f}x)")


if __name__ == "__main__":
    sys.exit(main())
