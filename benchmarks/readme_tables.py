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


def ppo_mujoco() -> str:
    d = _load("ppo_mujoco")
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
        ("single-seed steps/s vs rejax (its config)", "speedup_vs_rejax_sps", "≥ 1.0×", "x"),
        ("single-seed steps/s vs SB3 (rl-zoo config)", "speedup_vs_sb3_sps", "≥ 5×", "x"),
        ("16 seeds total steps/s vs rejax vmap", "sixteen_seeds_speedup_vs_rejax", "≥ 1.8×", "x"),
        ("16 seeds wall clock vs SB3 (2 processes)", "sixteen_seeds_speedup_vs_sb3", "≥ 5×", "x"),
        ("cold compile (s): ours / rejax", ("compile_s", "rejax_compile_s"), "≤ 0.6×", "pair"),
        ("start to result, warm cache (s) / rejax cold start", ("warm_start_s", "rejax_cold_start_s"), "≤ 0.5×", "pair"),
        ("median env steps to 475 (rl-zoo config): ours / SB3", ("median_steps_to_475", "sb3_median_steps_to_475"), "≤ SB3", "pair"),
    ]
    rows = ["| figure | measured | target |", "|---|---|---|"]
    for label, key, target, kind in spec:
        if kind == "x":
            v = d.get(key)
            rows.append(f"| {label} | {v:.2f}× | {target} |" if v is not None else f"| {label} | - | {target} |")
        else:
            a, b = d.get(key[0]), d.get(key[1])
            ratio = f" ({a / b:.2f}×)" if a is not None and b else ""
            rows.append(f"| {label} | {a} / {b}{ratio} | {target} |")
    rows.append(f"\n_{d['date']}, `{d['command']}`, {d['machine']['cores']} cores {d['machine']['cpu']}_")
    return "\n".join(rows)


TABLES = {"ppo_mujoco": ppo_mujoco, "ppo_cartpole": ppo_cartpole}


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, fn in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(\n<!-- /table -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + fn() + m.group(2), text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
