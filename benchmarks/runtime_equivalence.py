"""Nothing lost in the runtime redesign: the metrics of short PPO/TRPO/TNPG/VPG runs (JAX and host
backends) with the same seeds, before and after. ``results/runtime_equivalence/before.json`` was
written by this script's cases at commit 34b0b42 (the old ``core/onpolicy.py`` drivers, through
``ppo.train``/``trpo.train``); this script reruns them with the current code, writes ``after.json``
and compares every metric of every update: ``comparison.json``.

    python benchmarks/runtime_equivalence.py
"""
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from surrogate import envs
from surrogate.algos import ppo, tnpg, trpo, vpg

OUT = Path(__file__).parent / "results" / "runtime_equivalence"
REJAX = dataclasses.replace(ppo.PRESETS["cartpole-rejax"], total_steps=2000)
CASES = {
    "ppo_jax_joint": (ppo.ALGO, ppo.Config(total_steps=256 * 6), 2),
    "ppo_jax_rejax_1seed": (ppo.ALGO, REJAX, 1),  # separate updates on two devices
    "ppo_jax_rejax_2seeds": (ppo.ALGO, REJAX, 2),
    "ppo_jax_pendulum_norm": (ppo.ALGO, ppo.Config(env="Pendulum-v1", total_steps=256 * 4, normalize_obs=True,
                                                   normalize_reward=True), 2),
    "ppo_host_cartpole": (ppo.ALGO, ppo.Config(env="gym:CartPole-v1", total_steps=256 * 4), 1),
    "ppo_host_separate": (ppo.ALGO, ppo.Config(env="gym:CartPole-v1", total_steps=256 * 4, separate_updates=True), 1),
    "trpo_jax_1seed": (trpo.ALGO, trpo.Config(total_steps=1024 * 4), 1),
    "trpo_jax_2seeds_trvf": (trpo.ALGO, trpo.Config(total_steps=1024 * 4, vf_fit="trust_region"), 2),
    "tnpg_jax": (tnpg.ALGO, tnpg.Config(total_steps=1024 * 3), 2),
    "vpg_jax": (vpg.ALGO, vpg.Config(total_steps=1024 * 3), 2),
    "trpo_host_pendulum": (trpo.ALGO, trpo.Config(env="gym:Pendulum-v1", total_steps=1024 * 3, normalize_obs=True), 1),
}


def history(algo, config, seeds):
    result = algo.train(config, envs.make(config.env), jax.random.PRNGKey(3), seeds=seeds)
    return {k: np.asarray(v).tolist() for k, v in result.history.items()}


def compare(before: dict, after: dict) -> dict:
    rows = {}
    for case, metrics in after.items():
        worst, identical = 0.0, True
        for k, old in before[case].items():
            x, y = np.asarray(old), np.asarray(metrics[k])
            if not np.array_equal(x, y, equal_nan=True):
                identical = False
                worst = max(worst, float(np.nanmax(np.abs(x - y) / (np.abs(x) + 1e-6))))
        rows[case] = {"bit_identical": identical, "max_relative_difference": worst}
        print(f"{case:26s} bit-identical {identical!s:5s}  max relative difference {worst:.3g}")
    return rows


if __name__ == "__main__":
    after = {}
    for name, (algo, config, seeds) in CASES.items():
        t = time.time()
        after[name] = history(algo, config, seeds)
        print(f"{name}: {time.time() - t:.1f} s", flush=True)
    (OUT / "after.json").write_text(json.dumps(after))
    rows = compare(json.loads((OUT / "before.json").read_text()), after)
    (OUT / "comparison.json").write_text(json.dumps({"command": " ".join(["python", *sys.argv]),
                                                     "date": time.strftime("%Y-%m-%d %H:%M"), "cases": rows}, indent=1))
