"""Regenerate the README's result tables from benchmarks/results/*.json (never typed by hand).

  python benchmarks/readme_tables.py      # rewrites the blocks between <!-- table:NAME --> markers
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _load(name):
    f = RESULTS / f"{name}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def ppo_mujoco(name: str = "ppo_mujoco") -> str:
    d = _load(name)
    if not d:
        return "_not measured yet: run `python benchmarks/ppo_mujoco.py`_"
    rows = ["| task (1M steps) | seeds | ours: last 100 training episodes | ours: deterministic eval | CleanRL ppo_continuous_action (v4, 3 seeds) |",
            "|---|---|---|---|---|"]
    for name in ("Hopper", "HalfCheetah", "Walker2d"):
        if f"{name}_return_mean" in d:
            ref = d.get(f"{name}_cleanrl_return")
            rows.append(f"| {name}-v5 | {d[f'{name}_seeds']} | {d[f'{name}_return_mean']:.0f} ± {d[f'{name}_return_std']:.0f} "
                        f"| {d[f'{name}_eval_return_mean']:.0f} | {ref if ref is not None else '-'} |")
    if "speed_fraction_of_raw" in d:
        rows.append("")
        rows.append(f"Training speed on {d['speed_task']} (host backend, rollout + update, compile excluded): "
                    f"{d['speed_train_sps']:,} steps/s = **{d['speed_fraction_of_raw']:.0%}** of the raw single-env "
                    f"step rate ({d['speed_raw_env_sps']:,} steps/s) measured in the same script (target ≥ 70%).")
    rows.append(f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_")
    return "\n".join(rows)


def ppo_cartpole() -> str:
    d = _load("ppo_cartpole")
    if not d:
        return "_not measured yet: run `make bench`_"
    spec = [
        ("single-seed steps/s, rejax's config: ours / rejax", ("our_sps_rejax_config_1seed", "rejax_sps_1seed"), "≥ 1.0×"),
        ("single-seed steps/s, rl-zoo config: ours / SB3", ("our_sps_rlzoo_config_1seed", "sb3_sps_1seed"), "≥ 5×"),
        ("16 seeds, total steps/s: ours (sharded) / rejax (vmap)",
         ("our_sps_total_sixteen_seeds", "rejax_sps_total_sixteen_seeds"), "≥ 1.8×"),
        ("16 seeds × 100k steps, wall clock all included (s): SB3 (2 processes) / ours",
         ("sb3_sixteen_seeds_wall_s", "sixteen_seeds_wall_s"), "≥ 5×"),
        ("cold compile, training only (s): ours / rejax", ("compile_s", "rejax_compile_s"), "≤ 0.6×"),
        ("cold compile incl. evaluation (s): ours / rejax (eval_freq = total)",
         ("compile_with_eval_s", "rejax_compile_with_eval_s"), "≤ 0.6×"),
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


TABLES = {"ppo_mujoco": ppo_mujoco, "ppo_mujoco_separate_updates": lambda: ppo_mujoco("ppo_mujoco_separate_updates"),
          "ppo_cartpole": ppo_cartpole}


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, fn in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + fn() + "\n" + m.group(2), text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
