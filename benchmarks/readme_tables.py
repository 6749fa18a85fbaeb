"""Regenerate the result tables of README.md and benchmarks/README.md from benchmarks/results/*.json
(never typed by hand).

  python benchmarks/readme_tables.py      # rewrites the blocks between <!-- table:NAME --> markers

A table whose results file is missing reads "_not measured yet: run `python benchmarks/X.py`_".
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _load(name):
    f = RESULTS / f"{name}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def _first(d, *keys):
    """The value of the first of ``keys`` that ``d`` has (benchmark scripts name raw figures differently)."""
    return next((d[k] for k in keys if d.get(k) is not None), None)


def _footer(d) -> str:
    return f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_"


def _sps(x) -> str:
    """A rate: 3.10M, 141.5k, 150."""
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _ratio_row(d, label, ours, peer, ratio_key, target) -> str:
    """``| label | ours / peer | ratio | target |``; the ratio from ``ratio_key``, else ours / peer."""
    a, b = _first(d, *ours), _first(d, *peer)
    ratio = d.get(ratio_key)
    if ratio is None and a is not None and b:
        ratio = a / b
    return f"| {label} | {_sps(a)} / {_sps(b)} | {'-' if ratio is None else f'{ratio:.2f}×'} | {target} |"


def ppo_mujoco(name: str = "ppo_mujoco") -> str:
    d = _load(name)
    if not d:
        return "_not measured yet: run `python benchmarks/ppo_mujoco.py`_"
    rows = ["| task (1M steps) | seeds | ours: last 100 training episodes, mean ± std | median | 95% CI of the mean "
            "(bootstrap) | ours: deterministic eval | CleanRL ppo_continuous_action (v4, 3 seeds) |",
            "|---|---|---|---|---|---|---|"]
    for name in ("Hopper", "HalfCheetah", "Walker2d"):
        if f"{name}_return_mean" in d:
            ref = d.get(f"{name}_cleanrl_return")
            median, ci = d.get(f"{name}_return_median"), d.get(f"{name}_return_ci95")
            rows.append(f"| {name}-v5 | {d[f'{name}_seeds']} | {d[f'{name}_return_mean']:.0f} ± {d[f'{name}_return_std']:.0f} "
                        f"| {'-' if median is None else f'{median:.0f}'} | {'-' if ci is None else f'{ci[0]:.0f}-{ci[1]:.0f}'} "
                        f"| {d[f'{name}_eval_return_mean']:.0f} | {ref if ref is not None else '-'} |")
    if "speed_fraction_of_raw" in d:
        when = f", {d['speed_date']}" if "speed_date" in d else ""
        rows.append("")
        rows.append(f"Training speed on {d['speed_task']} (host backend, rollout + update, compile excluded): "
                    f"{d['speed_train_sps']:,} steps/s = **{d['speed_fraction_of_raw']:.0%}** of the raw single-env "
                    f"step rate ({d['speed_raw_env_sps']:,} steps/s) measured in the same script{when} (target ≥ 70%).")
    rows.append(f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_")
    return "\n".join(rows)


def ppo_cartpole() -> str:
    d = _load("ppo_cartpole")
    if not d:
        return "_not measured yet: run `make bench`_"
    spec = [
        ("single-seed steps/s, rejax's config: ours / rejax", ("our_sps_rejax_config_1seed", "rejax_sps_1seed"), "≥ 1.0×"),
        ("  reference, not a target: ours on one device / rejax",
         ("our_sps_rejax_config_1seed_one_device", "rejax_sps_1seed"), "-"),
        ("single-seed steps/s, rl-zoo config: ours / SB3", ("our_sps_rlzoo_config_1seed", "sb3_sps_1seed"), "≥ 5×"),
        ("16 seeds, total steps/s: ours (sharded) / rejax (vmap)",
         ("our_sps_total_sixteen_seeds", "rejax_sps_total_sixteen_seeds"), "≥ 1.8×"),
        ("16 seeds × 100k steps, wall clock all included (s): SB3 (2 processes) / ours",
         ("sb3_sixteen_seeds_wall_s", "sixteen_seeds_wall_s"), "≥ 5×"),
        ("cold compile incl. evaluation (s): ours / rejax (eval_freq = total)",
         ("compile_with_eval_s", "rejax_compile_with_eval_s"), "≤ 0.6×"),
        ("  stricter, not the issue's figure: cold compile, training only (s): ours / rejax (evaluation a no-op)",
         ("compile_s", "rejax_compile_s"), "-"),
        ("process start to result (s): ours, warm cache / rejax, cold", ("warm_start_s", "rejax_cold_start_s"), "≤ 0.5×"),
        ("median env steps to 475, rl-zoo config: ours / SB3", ("median_steps_to_475", "sb3_median_steps_to_475"), "≤ 1×"),
    ]

    def fmt(x):
        if x is None:
            return "never"
        return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.2f}"

    rows = ["| figure | ours / peer | ratio | target |", "|---|---|---|---|"]
    for label, (a_key, b_key), target in spec:
        a, b = d.get(a_key), d.get(b_key)
        ratio = f"{a / b:.2f}×" if a is not None and b else "-"
        rows.append(f"| {label} | {fmt(a)} / {fmt(b)} | {ratio} | {target} |")
    rows.append(f"| seeds reaching 475 within 100k steps: ours / SB3 | {d.get('seeds_reaching_475')} / "
                f"{d.get('sb3_seeds_reaching_475')} | | |")
    rows.append(f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_")
    return "\n".join(rows)


def trpo_mujoco() -> str:
    d = _load("trpo_mujoco")
    if not d:
        return "_not measured yet: run `python benchmarks/trpo_mujoco.py`_"
    rows = ["| task (1M steps) | TRPO, ours | PPO, ours | TRPO, Henderson et al. 2018 (2M steps) |", "|---|---|---|---|"]
    for name in ("Hopper", "HalfCheetah", "Walker2d"):
        if f"{name}_trpo_return_mean" in d:
            ppo = d.get(f"{name}_ppo_return_mean")
            ref = d.get(f"{name}_henderson2018_trpo_2M")
            rows.append(f"| {name}-v5 | {d[f'{name}_trpo_return_mean']:.0f} ± {d[f'{name}_trpo_return_std']:.0f} "
                        f"({d[f'{name}_trpo_seeds']} seeds) | {'-' if ppo is None else f'{ppo:.0f}'} "
                        f"({d[f'{name}_ppo_seeds']} seeds) | {'n/a' if ref is None else ref} |")
    rows.append(f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_")
    return "\n".join(rows)


def trpo_speed() -> str:
    d = _load("trpo_speed")
    if not d:
        return "_not measured yet: run `python benchmarks/trpo_speed.py`_"
    rows = ["| figure | ours | sb3-contrib 2.9.2 | ratio | target |", "|---|---|---|---|---|",
            f"| Pendulum-v1 steps/s (ours: JAX backend) | {d['ours_pendulum_jax_sps']:,.0f} | {d['sb3c_pendulum_sps']:,.0f} "
            f"| {d['speedup_vs_sb3c_jax']:.1f}× | ≥ 20× |",
            f"| Hopper-v5 steps/s (host backend) | {d['ours_hopper_host_sps']:,.0f} | {d['sb3c_hopper_sps']:,.0f} "
            f"| {d['speedup_vs_sb3c_host']:.1f}× | ≥ 2.5× |",
            f"| Hopper-v5 training rate / raw env rate ({d['raw_hopper_sps']:,.0f} steps/s) | "
            f"{d['host_fraction_of_raw']:.0%} | {d['sb3c_hopper_fraction_of_raw']:.0%} | | ≥ 70% |",
            f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_"]
    return "\n".join(rows)


def gae_lambda() -> str:
    d = _load("gae_lambda")
    if not d:
        return "_not measured yet: run `python benchmarks/gae_lambda.py`_"
    lambdas = [0.0, 0.9, 0.96, 0.99, 1.0]
    rows = ["| task | value fit | " + " | ".join(f"λ = {x}" for x in lambdas) + " | fastest |",
            "|---|---|" + "---|" * (len(lambdas) + 1)]
    for task, r in d["results"].items():
        for fit in ("adam", "trust_region"):
            auc = [r.get(f"{fit}/{x}", {}).get("auc_mean_return") for x in lambdas]
            seeds = max((r[f"{fit}/{x}"]["seeds"] for x in lambdas if f"{fit}/{x}" in r), default=0)
            if not seeds:
                continue
            best = lambdas[max((i for i in range(len(lambdas)) if auc[i] is not None), key=lambda i: auc[i])]
            rows.append(f"| {task} ({seeds} seeds) | {fit} | " + " | ".join("-" if a is None else f"{a:.0f}" for a in auc)
                        + f" | λ = {best} |")
    rows.append(f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_")
    return "\n".join(rows)


def dqn_cartpole() -> str:
    d = _load("dqn_cartpole")
    if not d:
        return "_not measured yet: run `python benchmarks/dqn_cartpole.py`_"
    rows = ["| figure | ours / peer | ratio | target |", "|---|---|---|---|",
            _ratio_row(d, "single-seed steps/s, rejax's config: ours / rejax",
                       ("our_sps_rejax_config_1seed", "ours_sps_1seed", "ours_sps"),
                       ("rejax_sps_1seed", "rejax_sps"), "speedup_vs_rejax_sps", "≥ 1.0×"),
            _ratio_row(d, "16 seeds, total steps/s: ours (sharded) / rejax (vmap)",
                       ("our_sps_total_sixteen_seeds", "ours_sps_sixteen_seeds"),
                       ("rejax_sps_total_sixteen_seeds", "rejax_sps_sixteen_seeds"),
                       "sixteen_seeds_speedup_vs_rejax", "≥ 1.8×"),
            _ratio_row(d, "single-seed steps/s, rl-zoo3 config: ours / SB3",
                       ("our_sps_rlzoo_config_1seed", "ours_sps_rlzoo", "ours_zoo_sps"),
                       ("sb3_sps_1seed", "sb3_sps"), "speedup_vs_sb3_sps", "≥ 3×")]
    ours, peer = _first(d, "final_return_mean", "ours_final_return_mean"), _first(d, "rejax_final_return_mean")
    if ours is not None:
        rows.append(f"| final return, rejax's config: ours / rejax | {ours:.0f} / "
                    f"{'-' if peer is None else f'{peer:.0f}'} | | |")
    rows.append(_footer(d))
    return "\n".join(rows)


def cem_cartpole() -> str:
    d = _load("cem_cartpole")
    if not d:
        return "_not measured yet: run `python benchmarks/cem_cartpole.py`_"
    raw = max(d["raw_step_to_sps"], d["raw_gymnax_sps"])
    returns = " / ".join(f"{r:.0f}" for r in d["final_returns"])
    to_475 = " / ".join("never" if i is None else str(i) for i in d.get("iterations_to_475", [])) or "-"
    rows = ["| figure | ours | reference | ratio | target |", "|---|---|---|---|---|",
            f"| steps/s: training / raw vmapped env (population {d['population']}) | {_sps(d['ours_sps'])} "
            f"| {_sps(raw)} | **{d['fraction_of_raw']:.0%}** | ≥ 50% |",
            f"| mean policy's return after {d['iterations']} iterations ({d['seeds']} seeds, 20 deterministic "
            f"episodes each) | {returns} | 500 (the maximum) | | |",
            f"| iterations until the mean policy scores ≥ 475 | {to_475} | | | |",
            _footer(d)]
    return "\n".join(rows)


def q_cartpole() -> str:
    d = _load("q_cartpole")
    if not d:
        return "_not measured yet: run `python benchmarks/q_cartpole.py`_"
    rows = ["| algorithm (default config) | seeds ≥ 475 | final returns (20 deterministic episodes per seed) "
            "| median env steps to a training mean ≥ 475 |", "|---|---|---|---|"]
    for name in ("soft_q", "a2c", "dqn", "soft_dqn"):
        if name in d:
            r = d[name]
            steps = sorted(x if x is not None else float("inf") for x in r["steps_to_475"])
            median = steps[len(steps) // 2] if len(steps) % 2 else (steps[len(steps) // 2 - 1] + steps[len(steps) // 2]) / 2
            rows.append(f"| `{name}` ({r['config']['total_steps'] // 1000}k steps) | {r['seeds_reaching_475']}/{r['seeds']} "
                        f"| {' / '.join(f'{x:.0f}' for x in r['final_returns'])} "
                        f"| {'never' if median == float('inf') else f'{median / 1000:.0f}k'} |")
    rows.append("")
    first = d["equivalence_first_differing_iteration"]
    rows.append(f"Equivalence on a real run: soft Q-learning and A2C in its parametrization (τ = {d['equivalence_tau']}, "
                f"vf_coef = 1/τ, Adam's ε and the clip norm × 1/τ) from one seed: largest parameter difference "
                f"after 10 updates {d['equivalence_max_param_diff_10_updates']:.1e} (parameters up to "
                f"{d['equivalence_max_param']:.2f}); the same training returns at every iteration "
                + (f"of {d['equivalence_updates']}." if first is None else
                   f"until iteration {first - 1} of {d['equivalence_updates']} (float rounding differs between "
                   f"the two programs; once one sampled action differs the runs part)."))
    rows.append(_footer(d))
    return "\n".join(rows)


def deep_sea() -> str:
    d = _load("deep_sea")
    if not d:
        return "_not measured yet: run `python benchmarks/deep_sea.py`_"
    names = ("ensemble_ucb", "bootstrapped_dqn", "dqn")
    rows = ["| setting | N, episodes | ensemble UCB | bootstrapped DQN | ε-greedy DQN (0.05) |", "|---|---|---|---|---|"]
    for label, run in d["runs"].items():
        for size, res in run["results"].items():
            setting = (f"K {run['heads']}, λ {run['ucb_lambda']}, p {run['mask_prob']}, "
                       + ("prior-free" if not run["prior_scale"] else f"randomized priors × {run['prior_scale']:g}"))
            cells = [f"{res[n]['found']}/{run['seeds']}" if n in res else "–" for n in names]
            rows.append(f"| {setting} | {size}, {run['episodes']} | " + " | ".join(cells) + " |")
    rows.append(f"\n_seeds that found the treasure (an episode with return > 0.5); `benchmarks/results/deep_sea.json` "
                f"holds each setting's command and date (last {d['date']}), {d['machine']['cores']} cores "
                f"{d['machine']['cpu']}_")
    return "\n".join(rows)


def q_minatar() -> str:
    d = _load("q_minatar")
    if not d:
        return "_not measured yet: run `python benchmarks/q_minatar.py`_"
    rows = ["| game | algorithm | frames per seed (of 5M) | last-100-episode return, mean of seeds (per seed) "
            "| MinAtar DQN at 5M | MinAtar AC(λ=0.8) at 5M | gymnax PPO at 10M | ran on |", "|---|---|---|---|---|---|---|---|"]
    ac = {"Breakout": 17.6, "SpaceInvaders": 185.1, "Asterix": 18.3, "Freeway": 47.5}  # paper-tables.md
    gymnax_ppo = {"Breakout": 28.0, "SpaceInvaders": 131.0, "Asterix": 15.0, "Freeway": 58.0}  # paper-tables.md
    for key, g in sorted(d.get("per_game", {}).items()):
        game, algo = key.split("_", 1)
        per_seed = " / ".join(f"{x:.1f}" for x in g["final_return_per_seed"])
        frames = f"{g['frames_per_seed'] // 1000}k" + (" (stopped: reached MinAtar DQN)" if g.get("stopped_at_anchor") else "")
        rows.append(f"| {game} | `{algo}` | {frames} | {g['final_return_mean']:.1f} ({per_seed}) "
                    f"| {g['minatar_dqn_5M']} | {ac.get(game, '-')} | {gymnax_ppo.get(game, '-')} | {g.get('ran_on', '-')} |")
    if d.get("aggregate_final"):
        rows += ["", "| algorithm | IQM of score / MinAtar DQN at 5M, at the frames all 4 games reached (95% CI) "
                 "| the same at each game's final chunk |", "|---|---|---|"]
        for algo, fin in d["aggregate_final"].items():
            common = d["aggregate"][algo]
            rows.append(f"| `{algo}` | {common['iqm']:.2f} [{common['ci95'][0]:.2f}, {common['ci95'][1]:.2f}] at "
                        f"{common['frames_per_seed'] // 1000}k | {fin['iqm']:.2f} [{fin['ci95'][0]:.2f}, "
                        f"{fin['ci95'][1]:.2f}] |")
    if "speedup_vs_rejax_sps" in d:
        rows += ["", "| speed, DQN on Breakout-MinAtar (preset `minatar`) | ours / rejax 0.1.3 | ratio | target |",
                 "|---|---|---|---|",
                 _ratio_row(d, "training steps/s, one seed", ("our_sps_1seed",), ("rejax_sps_1seed",),
                            "speedup_vs_rejax_sps", "≥ 1.0×"),
                 _ratio_row(d, "total training steps/s, 16 seeds", ("our_sps_total_sixteen_seeds",),
                            ("rejax_sps_total_sixteen_seeds",), "sixteen_seeds_speedup_vs_rejax", "≥ 1.8×")]
        if "speed_command" in d:
            rows.append(f"\n_speed: {d['speed_date']}, `{d['speed_command']}`_")
    rows.append(_footer(d))
    return "\n".join(rows)


def atari() -> str:
    d, envs = _load("atari"), _load("atari_envs")
    if not d:
        return "_not measured yet: run `python benchmarks/atari.py --speed`_"
    po, ps = d["ours_profile_s_per_iteration"], d["sb3_profile_s_per_iteration"]
    rows = ["| PPO on ALE/Pong-v5, CleanRL's ppo_atari settings (8 envs x 128 steps) | ours / SB3 2.9.2 CnnPolicy "
            "| ratio | target |", "|---|---|---|---|",
            _ratio_row(d, "training steps/s", ("ours_sps",), ("sb3_sps",), "speedup_vs_sb3_sps", "≥ 1.0×"),
            f"| fraction of the raw AtariVectorEnv rate ({_sps(d['raw_vector_ale_sps'])} steps/s) "
            f"| {d['fraction_of_raw']:.3f} | | |",
            f"| seconds per iteration: env / acting / update | {po['env_s']:.2f} / {po['act_s']:.2f} / "
            f"{po['update_s']:.2f} vs {ps['env_s']:.2f} / {ps['act_s']:.2f} / {ps['update_s']:.2f} | | |"]
    if envs:
        rows.append(f"| Atari vector env, 8 envs: ale-py `AtariVectorEnv` / Gymnasium async | "
                    f"{_sps(envs['ale_vector_sps'])} / {_sps(envs['gymnasium_async_sps'])} "
                    f"| {envs['speedup_ale_vector']:.2f}× | the faster is used |")
    if d.get("pong_steps_done"):
        reached, done = d.get("pong_steps_to_18"), d["pong_steps_done"] / 1e6
        status = (f"18 first reached at {reached / 1e6:.2f}M agent steps ({4 * reached / 1e6:.1f}M frames); the run "
                  f"stopped at the end of that piece, {done:.2f}M" if reached else
                  f"after {done:.2f}M agent steps, run in progress until 18 or 4M")
        rows.append(f"| learning, seed 0: mean game score of the last 100 episodes ({status}) | "
                    f"{d['pong_final_return']} at {done:.2f}M | steps to 18: {reached if reached else 'not yet'} | "
                    f"CleanRL: {d['cleanrl_ppo_atari_10M_return']} at 10M (its curve is published as a figure only) |")
    if "speed_command" in d:
        rows.append(f"\n_speed: {d['speed_date']}, `{d['speed_command']}`_")
    rows.append(_footer(d))
    return "\n".join(rows)


def rllab_speed() -> str:
    d = _load("rllab_speed")
    if not d:
        return "_not measured yet: run `python benchmarks/rllab_speed.py`_"
    rows = ["| trial (5 seeds, 100 envs x 500 steps each) | training steps/s | raw env steps/s | fraction of raw "
            "| collecting alone / raw | learn's share of the time |", "|---|---|---|---|---|---|"]
    for task, row in d.get("grid", {}).items():
        raw = row["raw_steps_per_s"]
        for algo, r in row.items():
            if isinstance(r, dict):
                rows.append(f"| `{algo}` on {task} | {_sps(r['steps_per_s'])} | {_sps(raw)} | {r['fraction_of_raw']:.4f} "
                            f"| {r['collect_only_steps_per_s'] / raw:.3f} | {r['learn_share']:.0%} |")
    c, g = d.get("cmaes", {}), d.get("ddpg", {})
    rows += ["", "| figure | ours / peer | ratio | target |", "|---|---|---|---|",
             f"| smallest trial fraction of the raw env rate | | {d.get('grid_fraction_of_raw', 0):.4f} | ≥ 0.5 |"]
    if c:
        rows.append(_ratio_row(c, "CMA-ES candidates/s: ours / `cma` 4.5.0 around our jitted evaluation",
                               ("ours_candidates_per_s",), ("cma_candidates_per_s",), "speedup_vs_cma", "≥ 5×"))
    if g:
        rows.append(_ratio_row(g, "DDPG training steps/s, SB3 defaults, Pendulum-v1: ours / SB3 2.9.2",
                               ("our_sps",), ("sb3_sps",), "speedup_vs_sb3_sps", "≥ 10×"))
    rows.append(_footer(d))
    return "\n".join(rows)


def recurrent_cartpole() -> str:
    d = _load("recurrent_cartpole")
    if not d:
        return "_not measured yet: run `python benchmarks/recurrent_cartpole.py`_"

    def steps(x):
        return "never" if x is None else f"{x / 1000:.0f}k"

    ours, peer = d.get("median_steps_to_475"), d.get("sb3c_median_steps_to_475")
    rows = ["| figure | ours / peer | ratio | target |", "|---|---|---|---|",
            _ratio_row(d, "single-seed steps/s, rl-zoo3 ppo_lstm config: ours / sb3-contrib RecurrentPPO",
                       ("ours_sps", "our_sps", "our_sps_1seed", "ours_sps_1seed"), ("sb3c_sps", "sb3c_sps_1seed"),
                       "speedup_vs_sb3c_sps", "≥ 30×"),
            f"| median env steps to 475: ours / sb3-contrib | {steps(ours)} / {steps(peer)} "
            f"| {f'{ours / peer:.2f}×' if ours is not None and peer else '-'} | ≤ 1× |"]
    mlp = _first(d, "mlp_ppo_final_return", "mlp_final_return", "mlp_ppo_final_return_mean", "mlp_ppo_return")
    if mlp is not None:
        rows.append(f"| PPO with an MLP (no memory), same task: final return | {mlp:.0f} | | < 200 |")
    rows.append(_footer(d))
    return "\n".join(rows)


def reptile() -> str:
    d = _load("reptile")
    if not d:
        return "_not measured yet: run `python benchmarks/reptile.py`_"
    rows = ["| figure | ours | peer / paper | ratio | target |", "|---|---|---|---|---|"]
    if "speedup_vs_torchopt" in d:
        rows.append(f"| MAML meta-updates/s, sine (MLP 1-64-64-1, meta-batch 16, 5 inner steps): ours / torchopt "
                    f"| {d['maml_updates_per_s']:.1f} | {d['torchopt_maml_updates_per_s']:.2f} "
                    f"| {d['speedup_vs_torchopt']:.1f}× | ≥ 3× |")
        rows.append(f"| MAML meta-updates/s, Omniglot-shaped (conv net, meta-batch 4, 1 step): ours / torchopt "
                    f"| {d['omniglot_shaped_maml_updates_per_s']:.2f} | {d['omniglot_shaped_torchopt_updates_per_s']:.2f} "
                    f"| {d['omniglot_shaped_speedup_vs_torchopt']:.2f}× | |")
    for algo, r in d.get("sine", {}).items():
        rows.append(f"| sine MSE after 32 steps on 10 points (before): {algo}, {r['meta_iterations']} meta-iterations "
                    f"| {r['mse_after']:.3f} ({r['mse_before']:.2f}) | | | |")
    split = None if d.get("digits") else _load("reptile_digits")  # the digits part run on its own
    digits = d.get("digits") or (split or {}).get("digits", {})
    for name, r in digits.items():
        algo, shots = name.split("_")
        rows.append(f"| digits 5-way {shots[:-4]}-shot accuracy %, {algo}, {r['meta_iterations']} meta-iterations: "
                    f"non-transductive / transductive | {100 * r['accuracy']:.1f} ± {100 * r['accuracy_std_over_seeds']:.1f}"
                    f" / {100 * r['accuracy_transductive']:.1f} ± {100 * r['accuracy_transductive_std_over_seeds']:.1f} "
                    f"| | | |")
    o = d.get("omniglot", {})
    if o:
        ours = o.get("ours")
        cell = (f"{100 * ours['accuracy']:.2f} / {100 * ours['accuracy_transductive']:.2f}" if ours
                else "not run (no Omniglot data here)")
        rows.append(f"| Omniglot 5-way 1-shot accuracy %, Reptile at the paper's settings: non-transductive / "
                    f"transductive | {cell} | {o['paper']['reptile']} / {o['paper']['reptile_transductive']} | | |")
    runs = d.get("parts_run", {})  # parts rerun on their own keep their own command
    footer = "".join(f"\n_{part}: {r['date']}, `{r['command']}`_" for part, r in runs.items())
    rows.append((footer if runs else _footer(d))
                + (_footer(split) if split else ""))
    return "\n".join(rows)


def rl2() -> str:
    """RL²'s Tables 1 and 2 as ``benchmarks/rl2_common.summarize`` wrote them (cells measured so far)."""
    parts = [d["markdown"] + "\n" + _footer(d) for d in map(_load, ("rl2_bandits", "rl2_mdps")) if d]
    return "\n\n".join(parts) or "_not measured yet: run `python benchmarks/rl2_bandits.py`_"


TABLES = {"reptile": reptile, "rl2": rl2, "trpo_mujoco": trpo_mujoco, "trpo_speed": trpo_speed, "gae_lambda": gae_lambda, "ppo_mujoco": ppo_mujoco,
          "ppo_mujoco_separate_updates": lambda: ppo_mujoco("ppo_mujoco_separate_updates"),
          "ppo_cartpole": ppo_cartpole, "dqn_cartpole": dqn_cartpole, "cem_cartpole": cem_cartpole, "q_cartpole": q_cartpole, "deep_sea": deep_sea, "q_minatar": q_minatar,
          "recurrent_cartpole": recurrent_cartpole, "atari": atari, "rllab_speed": rllab_speed}
FILES = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")


def main():
    for readme in FILES:
        if not readme.is_file():
            continue
        text = readme.read_text()
        for name, fn in TABLES.items():
            pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table -->)", re.S)
            text = pattern.sub(lambda m: m.group(1) + fn() + "\n" + m.group(2), text)
        readme.write_text(text)


if __name__ == "__main__":
    main()
