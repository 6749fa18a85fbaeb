"""Reptile, FOMAML and MAML (``surrogate.meta``): the sine figure, few-shot accuracy on the embedded digits,
the Omniglot command beside the paper's numbers, and speed against torchopt MAML, in one run.

(a) ``speedup_vs_torchopt``: MAML (second order) meta-updates/s on the sine task, ours vs torchopt 0.7.3
    (``benchmarks/peers/torchopt_maml.py``, peers venv, torch CPU) at the same math: MLP 1-64-64-1 tanh,
    meta-batch 16, 5 full-batch SGD inner steps of lr 0.01 on 10 support points, 10 query points, Adam 1e-3,
    new tasks every update. Rounds alternate (ours in this process, compile excluded; torchopt in a fresh
    process with 1 torch thread after a warm-up, the faster setting on this loaded 2-core machine); each
    side's best round counts, the median ratio is kept beside it. Ours for Reptile and FOMAML at the same
    settings too, and one round on Omniglot-shaped tasks (random 28x28 images, 5-way 1-shot, 5 query per
    class, the conv net, one inner step of lr 0.4, meta-batch 4): ``omniglot_shaped_speedup_vs_torchopt``.
(b) the sine figure (``results/reptile_sine.png``): one held-out wave, 10 points, the model before and after
    32 SGD steps (lr 0.02), for Reptile, FOMAML, MAML and a pre-trained (joint training) baseline;
    ``sine_mse_after`` / ``sine_mse_before`` over 1000 held-out tasks (100 query points each).
(c) ``digits``: 5-way 1-shot and 5-shot accuracy (non-transductive and transductive) on the embedded digits
    (classes split train/test by ``surrogate.data``), 3 seeds vmapped per setting, at a CPU budget
    (``DIGITS_BUDGET``: 2000 meta-iterations, not the paper's 100K; evaluated on 200 test tasks per seed
    with 5 inner steps). ``--parts digits [--algos maml]`` reruns only those cells; the other parts and
    cells already in the results file are kept.
(d) Omniglot 5-way 1-shot at the paper's settings: the command, the paper's numbers, and ours when
    ``--omniglot PATH`` is given.

  python benchmarks/reptile.py [--quick] [--parts speed,sine,digits] [--algos reptile,fomaml,maml]
                               [--digits-iterations N] [--omniglot PATH] [--peers-python .venv-peers/bin/python]
"""
import os

ORIG_ENV = dict(os.environ)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (sets XLA flags before jax)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import RESULTS, run_json, write_result  # noqa: E402

from surrogate.meta import default_config, evaluate, make_trainer  # noqa: E402
from surrogate.meta import sine  # noqa: E402
from surrogate.meta.inner import adapt, inner_optimizer  # noqa: E402

SPEED = dict(n_way=1, k_shot=10, n_query=10, inner_optimizer="sgd", inner_lr=0.01, inner_steps=5, inner_batch=0,
             meta_batch=16, outer_optimizer="adam", outer_lr=1e-3, anneal=False, hidden=(64, 64))
PEER_SINE = ["--task", "sine", "--meta-batch", "16", "--inner-steps", "5", "--inner-lr", "0.01", "--shots", "10",
             "--query", "10"]
OMNI_SHAPED = dict(data="omniglot:shaped", n_way=5, k_shot=1, n_query=5, eval_query=1, inner_optimizer="sgd",
                   inner_lr=0.4, inner_steps=1, inner_batch=0, meta_batch=4, outer_optimizer="adam", outer_lr=1e-3,
                   anneal=False)
PEER_OMNI = ["--task", "omniglot", "--meta-batch", "4", "--inner-steps", "1", "--inner-lr", "0.4", "--shots", "1",
             "--query", "5"]
PAPER_OMNIGLOT = {"reptile": 95.39, "reptile_transductive": 97.68}
OMNIGLOT_COMMAND = "surrogate train reptile --data omniglot:PATH --k-shot 1 --seeds 1  # paper settings are the defaults"
DIGITS_BUDGET = {"reptile": dict(meta_iterations=2000), "fomaml": dict(meta_iterations=2000, meta_batch=4),
                 "maml": dict(meta_iterations=2000, meta_batch=4)}
DIGITS_EVAL_TASKS = 200  # per seed


def ours_rate(algo, cfg, updates, images=None):
    trainer = make_trainer(algo, cfg, images)
    state = trainer.init(jax.random.PRNGKey(0)[None])
    state, _ = jax.block_until_ready(trainer.run(state, trainer.data, updates))  # compiles
    t = time.perf_counter()
    jax.block_until_ready(trainer.run(state, trainer.data, updates))
    return updates / (time.perf_counter() - t)


def speed(peers_py, rounds, quick):
    cfg = dataclasses.replace(default_config("maml", "sine"), **SPEED, meta_iterations=10**6)
    n_ours, n_peer = (50, 5) if quick else (300, 20)
    ours, peer = [], []
    for r in range(rounds):
        print(f"speed round {r + 1}/{rounds}: ours MAML, torchopt MAML (sine) ...", flush=True)
        ours.append(ours_rate("maml", cfg, n_ours))
        peer.append(run_json([peers_py, HERE / "peers" / "torchopt_maml.py", *PEER_SINE, "--updates", n_peer,
                              "--warmup", 3, "--threads", 1], ORIG_ENV, "torchopt MAML")["updates_per_s"])
    others = {a: ours_rate(a, cfg, n_ours) for a in ("reptile", "fomaml")}
    out = dict(speedup_vs_torchopt=max(ours) / max(peer),
               speedup_vs_torchopt_median=statistics.median(o / p for o, p in zip(ours, peer)),
               maml_updates_per_s=max(ours), torchopt_maml_updates_per_s=max(peer), maml_rounds=ours,
               torchopt_rounds=peer, reptile_updates_per_s=others["reptile"], fomaml_updates_per_s=others["fomaml"],
               speed_settings={**SPEED, "hidden": list(SPEED["hidden"])})
    print("speed, Omniglot-shaped tasks ...", flush=True)
    images = {s: np.random.default_rng(0).random((40, 20, 28, 28, 1), dtype=np.float32) for s in ("train", "test")}
    ocfg = dataclasses.replace(default_config("maml", "digits"), **OMNI_SHAPED, meta_iterations=10**6)
    o = ours_rate("maml", ocfg, 3 if quick else 10, images)
    p = run_json([peers_py, HERE / "peers" / "torchopt_maml.py", *PEER_OMNI, "--updates", 3 if quick else 10,
                  "--warmup", 2, "--threads", 1], ORIG_ENV, "torchopt MAML omniglot-shaped")
    out.update(omniglot_shaped_speedup_vs_torchopt=o / p["updates_per_s"], omniglot_shaped_maml_updates_per_s=o,
               omniglot_shaped_torchopt_updates_per_s=p["updates_per_s"])
    return out, p["versions"]


def sine_part(quick, png):
    iters = {"reptile": 30_000, "fomaml": 10_000, "maml": 10_000, "pretrain": 10_000}
    if quick:
        iters = {k: 300 for k in iters}
    out, params = {}, {}
    for algo, n in iters.items():
        print(f"sine: {algo}, {n} meta-iterations ...", flush=True)
        cfg = dataclasses.replace(default_config("maml" if algo == "pretrain" else algo, "sine"), meta_iterations=n)
        trainer = make_trainer(algo, cfg)
        t = time.perf_counter()
        state, _ = jax.block_until_ready(trainer.run(trainer.init(jax.random.PRNGKey(0)[None]), trainer.data, n))
        report = evaluate(trainer, state)
        out[algo] = {"mse_after": report["mse"], "mse_before": report["mse_before"], "meta_iterations": n,
                     "train_s": time.perf_counter() - t}
        params[algo] = jax.tree.map(lambda x: x[0], state.params)
    plot_sine(params, png)
    return out


def plot_sine(params, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = jax.random.PRNGKey(123)
    amp, phase = np.array([3.5]), np.array([1.0])  # a held-out wave of large amplitude
    xs = jax.random.uniform(key, (1, 10, 1), minval=-5.0, maxval=5.0)
    ys = amp[0] * jax.numpy.sin(xs + phase[0])
    grid = np.linspace(-5, 5, 200)[:, None]
    fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.2), sharey=True)
    for ax, (algo, p) in zip(axes, params.items()):
        adapted = adapt(sine.loss_fn, p, xs[0], ys[0], key, steps=32, batch_size=10, optimizer=inner_optimizer("sgd", 0.02))
        ax.plot(grid, amp[0] * np.sin(grid + phase[0]), "k", lw=1, label="true")
        ax.plot(grid, sine.apply(p, grid), "C1--", label="before")
        ax.plot(grid, sine.apply(adapted, grid), "C0", label="after 32 steps")
        ax.plot(xs[0, :, 0], ys[0, :, 0], "k^", label="10 points")
        ax.set_title(algo)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def digits_part(quick, seeds, algos=("reptile", "fomaml", "maml"), save=lambda out: None, iterations=None,
                out=None):
    """The digits cells of ``algos`` (added to ``out``, the cells already in the results file)."""
    out = dict(out or {})
    for algo in algos:
        for k in (1, 5):
            budget = dict(DIGITS_BUDGET[algo], eval_tasks=DIGITS_EVAL_TASKS, eval_inner_steps=5)
            if iterations:
                budget.update(meta_iterations=iterations)
            if quick:
                budget.update(meta_iterations=2, eval_tasks=50, eval_inner_steps=2)
            cfg = dataclasses.replace(default_config(algo, "digits"), k_shot=k, **budget)
            print(f"digits: {algo} 5-way {k}-shot, {seeds} seeds, {cfg.meta_iterations} meta-iterations ...", flush=True)
            trainer = make_trainer(algo, cfg)
            t = time.perf_counter()
            keys = jax.vmap(jax.random.PRNGKey)(np.arange(seeds))
            state, _ = jax.block_until_ready(trainer.run(trainer.init(keys), trainer.data, cfg.meta_iterations))
            r = evaluate(trainer, state)
            out[f"{algo}_{k}shot"] = {key: r[key] for key in r if key.startswith("accuracy") or key == "eval_tasks_per_seed"}
            out[f"{algo}_{k}shot"].update(meta_iterations=cfg.meta_iterations, wall_s=time.perf_counter() - t,
                                          meta_batch=cfg.meta_batch, eval_inner_steps=cfg.eval_inner_steps,
                                          command=" ".join(["python", *sys.argv]), date=time.strftime("%Y-%m-%d %H:%M:%S"))
            print(f"  accuracy {r['accuracy']:.3f} (transductive {r['accuracy_transductive']:.3f})", flush=True)
            save(out)  # each cell is kept as it ends
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--quick", action="store_true", help="smoke test: tiny budgets")
    p.add_argument("--parts", default="speed,sine,digits")
    p.add_argument("--omniglot", default=None, metavar="PATH", help="run Omniglot 5-way 1-shot at the paper's settings")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--algos", default="reptile,fomaml,maml", help="digits part: which learners")
    p.add_argument("--digits-iterations", type=int, default=None,
                   help=f"digits part: meta-iterations per cell (default {DIGITS_BUDGET['maml']['meta_iterations']})")
    p.add_argument("--out", default=str(RESULTS / "reptile.json"))
    a = p.parse_args()
    parts = a.parts.split(",")
    # the parts (and digits cells) not run now keep their figures; each part records the command that made it
    f = json.loads(Path(a.out).read_text()) if Path(a.out).is_file() else {}
    if "command" in f and "parts_run" not in f:  # a file from one whole run: its parts share its command
        f["parts_run"] = {part: {"command": f["command"], "date": f["date"]} for part in ("speed", "sine", "digits")
                          if (part == "speed" and "speedup_vs_torchopt" in f) or part in f}
    peer_versions = f.pop("versions", {}).get("peers", {})
    for key in ("command", "date", "machine", "load_avg_end"):
        f.pop(key, None)
    stamp = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    f["parts_run"] = {**f.get("parts_run", {}), **{part: stamp for part in parts}}
    f["load_avg_start"] = os.getloadavg()
    if a.omniglot or "omniglot" not in f:
        f["omniglot"] = {"command": OMNIGLOT_COMMAND.replace("PATH", a.omniglot or "PATH"), "paper": PAPER_OMNIGLOT,
                         "ours": None}
    if "speed" in parts:
        figures, peer_versions = speed(a.peers_python, 2 if a.quick else 3, a.quick)
        f.update(figures)
        write_result(Path(a.out), f, extra_versions={"peers": peer_versions})  # each part is kept as it ends
    if "sine" in parts:
        f["sine"] = sine_part(a.quick, Path(a.out).with_name("reptile_sine.png"))
        write_result(Path(a.out), f, extra_versions={"peers": peer_versions})
    if "digits" in parts:
        def save(cells):
            write_result(Path(a.out), {**f, "digits": cells}, extra_versions={"peers": peer_versions})

        f["digits"] = digits_part(a.quick, a.seeds, a.algos.split(","), save, a.digits_iterations, f.get("digits"))
    if a.omniglot:
        from surrogate.meta import train_in_dir

        cfg = dataclasses.replace(default_config("reptile", f"omniglot:{a.omniglot}"), k_shot=1)
        f["omniglot"]["ours"] = train_in_dir(Path("runs") / "reptile-omniglot-paper", "reptile", cfg, progress=True)
    f["load_avg_end"] = os.getloadavg()
    write_result(Path(a.out), f, extra_versions={"peers": peer_versions})
    if "speedup_vs_torchopt" in f:
        print(f"\nMAML on sine: ours {f['maml_updates_per_s']:.1f} vs torchopt {f['torchopt_maml_updates_per_s']:.2f} "
              f"meta-updates/s = {f['speedup_vs_torchopt']:.1f}x (target >= 3x)")
    for name, r in f.get("digits", {}).items():
        print(f"digits {name}: {100 * r['accuracy']:.1f}% (transductive {100 * r['accuracy_transductive']:.1f}%)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
