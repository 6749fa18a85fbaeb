"""Replay buffer speed: ``surrogate.core.replay`` against flashbax 0.1.3, in one process.

DQN-on-CartPole sizes (rejax's DQN config, ../shared/design.md): capacity 50,000 transitions
``(obs f32[4], action i32, reward f32, termination f32, next_obs f32[4])``; each step adds 10
transitions (10 envs) and samples 5 minibatches of 100 (5 updates), inside one jitted
``lax.scan`` of ``--steps`` steps (default 6,000: the buffer fills at step 5,000 and wraps).
The sampled minibatches are summed into the scan carry so nothing is optimised away; the
transitions are random numbers made in the step, the same for every buffer.

flashbax is measured as ``make_item_buffer(add_sequences=True)`` (independent transitions, the
like-for-like buffer) and ``make_flat_buffer(add_batch_size=10)`` (stores one row per env and
samples consecutive pairs, so it gathers two transitions per sample). After the timed runs the
stored items of the hand-written and the item buffer are checked to be identical.

Figures: steps/s (scan steps per second, over all seeds for the vmapped runs; compile excluded:
the fastest of ``--repeats`` interleaved runs after one that compiles; the median is kept beside
it) for one seed and 16 vmapped seeds, and ``handwritten_vs_flashbax`` = hand-written / item
buffer steps/s for one seed (``..._16_seeds`` for 16). flashbax is optional: without it only
the hand-written buffer is measured, with a message that says how to install it.

  python benchmarks/replay_buffer.py [--steps 6000] [--seeds 16] [--repeats 5]   # ~1 minute
"""
import argparse
import importlib.metadata
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

from surrogate.core import replay  # noqa: E402

CAPACITY, N_ENVS, BATCH, UPDATES = 50_000, 10, 100, 5
EXAMPLE = {"obs": jnp.zeros(4, jnp.float32), "action": jnp.zeros((), jnp.int32), "reward": jnp.zeros(()),
           "termination": jnp.zeros(()), "next_obs": jnp.zeros(4, jnp.float32)}


def transitions(key):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (N_ENVS, 4))
    return {"obs": obs, "action": jax.random.randint(k2, (N_ENVS,), 0, 2), "reward": jnp.ones(N_ENVS),
            "termination": (jax.random.uniform(k3, (N_ENVS,)) < 0.05).astype(jnp.float32),
            "next_obs": obs + 0.1}


def checksum(batch):
    return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(batch))


def make_run(init, add, sample, steps: int):
    """``run(key) -> (buffer state, checksum)``: one scan of ``steps`` add-then-sample steps."""
    def step(carry, key):
        state, acc = carry
        k_add, k_s = jax.random.split(key)
        state = add(state, transitions(k_add))
        for k in jax.random.split(k_s, UPDATES):
            acc = acc + checksum(sample(state, k))
        return (state, acc), None

    def run(key):
        (state, acc), _ = jax.lax.scan(step, (init(), jnp.zeros(())), jax.random.split(key, steps))
        return state, acc

    return run


def buffers(steps: int) -> dict:
    runs = {"handwritten": make_run(lambda: replay.init_replay(CAPACITY, EXAMPLE), replay.add_batch,
                                    lambda s, k: replay.sample(s, k, BATCH), steps)}
    try:
        import flashbax as fbx
    except ImportError:
        print("flashbax is not installed: measuring only the hand-written buffer "
              "(`pip install flashbax==0.1.3` to compare; it is not a dependency of surrogate)")
        return runs
    item = fbx.make_item_buffer(max_length=CAPACITY, min_length=BATCH, sample_batch_size=BATCH,
                                add_sequences=True, add_batches=False)
    runs["flashbax_item"] = make_run(lambda: item.init(jax.tree.map(lambda x: x, EXAMPLE)), item.add,
                                     lambda s, k: item.sample(s, k).experience, steps)
    flat = fbx.make_flat_buffer(max_length=CAPACITY, min_length=BATCH, sample_batch_size=BATCH,
                                add_sequences=False, add_batch_size=N_ENVS)
    runs["flashbax_flat"] = make_run(lambda: flat.init(jax.tree.map(lambda x: x, EXAMPLE)), flat.add,
                                     lambda s, k: flat.sample(s, k).experience, steps)
    return runs


def measure(runs: dict, steps: int, seeds: int, repeats: int) -> tuple[dict, dict]:
    """Interleaved timing (each repeat runs every buffer once) so machine noise hits all alike."""
    keys = jax.random.split(jax.random.key(0), seeds)
    fns = {name: jax.jit(fn if seeds == 1 else jax.vmap(fn)) for name, fn in runs.items()}
    args = keys[0] if seeds == 1 else keys
    outs, compile_s, rates = {}, {}, {name: [] for name in fns}
    for name, f in fns.items():
        t = time.perf_counter()
        outs[name] = jax.block_until_ready(f(args))
        compile_s[name] = time.perf_counter() - t
    for _ in range(repeats):
        for name, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(args))
            rates[name].append(steps * seeds / (time.perf_counter() - t))
    figures = {}
    for name, r in rates.items():
        figures[f"{name}_steps_per_s{'' if seeds == 1 else f'_{seeds}_seeds'}"] = max(r)
        figures[f"{name}_median{'' if seeds == 1 else f'_{seeds}_seeds'}"] = float(np.median(r))
        figures[f"{name}_first_call_s{'' if seeds == 1 else f'_{seeds}_seeds'}"] = compile_s[name]
    return figures, outs


def check_same_items(outs: dict, seeds: int):
    """The hand-written buffer and flashbax's item buffer hold the same transitions in the same slots."""
    if "flashbax_item" not in outs:
        return
    ours = outs["handwritten"][0].items
    theirs = outs["flashbax_item"][0].experience  # leaves [(seeds,) 1, capacity, ...]
    theirs = jax.tree.map(lambda x: x[:, 0] if seeds > 1 else x[0], theirs)
    for k in ours:
        np.testing.assert_array_equal(np.asarray(ours[k]), np.asarray(theirs[k]), err_msg=k)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=RESULTS / "replay_buffer.json")
    a = p.parse_args()
    runs = buffers(a.steps)
    load_before = os.getloadavg()[0]
    figures = {"steps": a.steps, "capacity": CAPACITY, "add_per_step": N_ENVS, "batch": BATCH,
               "samples_per_step": UPDATES, "flashbax_measured": "flashbax_item" in runs}
    for seeds in (1, a.seeds):
        f, outs = measure(runs, a.steps, seeds, a.repeats)
        check_same_items(outs, seeds)
        figures.update(f)
        print({k: round(v, 3) for k, v in f.items()}, flush=True)
    if "flashbax_item" in runs:
        figures["handwritten_vs_flashbax"] = figures["handwritten_steps_per_s"] / figures["flashbax_item_steps_per_s"]
        figures[f"handwritten_vs_flashbax_{a.seeds}_seeds"] = (figures[f"handwritten_steps_per_s_{a.seeds}_seeds"]
                                                               / figures[f"flashbax_item_steps_per_s_{a.seeds}_seeds"])
        figures["handwritten_vs_flashbax_flat"] = figures["handwritten_steps_per_s"] / figures["flashbax_flat_steps_per_s"]
        figures["stored_items_identical"] = True
    figures["load_average_1min"] = [load_before, os.getloadavg()[0]]  # before, after: >cores means a shared CPU
    try:
        extra = {"flashbax": importlib.metadata.version("flashbax")}
    except importlib.metadata.PackageNotFoundError:
        extra = {"flashbax": None}
    out = write_result(a.out, figures, extra)
    print({k: v for k, v in out.items() if k.startswith("handwritten_vs")}, "->", a.out)


if __name__ == "__main__":
    main()
