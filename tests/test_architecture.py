"""The layout's rules (design.md, issue 25): ``core/`` is pure math and imports nothing from the runtime,
algorithms, envs, run directory or CLI; the runtime knows no algorithm; the plot module knows no run
directory; every algorithm file stays short."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "surrogate"


def imports(path: Path) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("surrogate")}


def test_core_imports_only_core():
    for path in (PKG / "core").glob("*.py"):
        outside = {m for m in imports(path) if not m.startswith("surrogate.core")}
        assert not outside, (path.name, outside)


def test_runtime_imports_no_algorithm_env_run_or_cli():
    for path in (PKG / "runtime").glob("*.py"):
        bad = {m for m in imports(path) if m.startswith(("surrogate.algos", "surrogate.envs", "surrogate.run",
                                                          "surrogate.cli", "surrogate.plot"))
               and not m.startswith("surrogate.runtime")}
        assert not bad, (path.name, bad)


def test_plot_does_not_import_the_run_directory():
    assert not imports(PKG / "plot.py"), imports(PKG / "plot.py")


def test_algorithm_files_stay_short():
    for path in (PKG / "algos").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 330, path.name  # the issue: "<= ~300"
