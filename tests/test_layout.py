"""The package reads as the pipeline: no stage imports a later one, no package holds an import cycle (imports
inside functions included), training and inference are siblings over ``artifacts``, and no function grows
past 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "musesynth"
# Order of the pipeline; shared helpers (errors, atomic writes, devices, plots, ownership, outputs) come first.
# ``artifacts`` (checkpoint metadata, loading, the shipped format) sits below both training and inference.
STAGES = ["errors", "signals", "progress_bar", "atomic", "device", "plotting", "ownership", "outputs", "tokenize",
          "data", "models", "artifacts", "training", "generate", "evaluate", "ablate", "api", "studio", "commands",
          "cli", "train", "predict", "__main__", "__init__"]
INFERENCE = ("generate", "studio")  # built on artifacts, never on training


def stage_of(module: str) -> int:
    parts = module.split(".")
    return STAGES.index(parts[1] if len(parts) > 1 else "__init__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG).with_suffix("").parts
    return ".".join(("musesynth", *(parts[:-1] if parts[-1] == "__init__" else parts)))


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def imports(path: Path) -> list[str]:
    """Every musesynth module ``path`` imports, at the top or inside a function; ``from pkg import sub``
    counts as importing the submodule ``pkg.sub`` where one exists."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("musesynth"):
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
            out += subs if len(subs) == len(node.names) else [node.module, *subs]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("musesynth")]
    return out


def test_no_module_imports_a_later_stage():
    bad = []
    for path in PKG.rglob("*.py"):
        me = module_name(path)
        for target in imports(path):
            if target != "musesynth" and stage_of(target) > stage_of(me):
                bad.append(f"{me} -> {target}")
    assert not bad, bad


def test_training_and_inference_are_siblings():
    """Nothing in training imports generate, evaluate, studio or the API, and generate and the studio load
    models from ``artifacts``, never from training."""
    bad = []
    for me, path in MODULES.items():
        stage = me.split(".")[1] if "." in me else ""
        for target in imports(path):
            other = target.split(".")[1] if "." in target else ""
            if (stage == "training" and other in ("generate", "evaluate", "studio", "api")) or (
                    stage in INFERENCE and other == "training"):
                bad.append(f"{me} -> {target}")
    assert not bad, bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each a cycle to report."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_a_package():
    """Within each package, modules import each other one way only (a package's ``__init__`` re-exporting
    its modules is the package itself, so it is left out)."""
    graph: dict[str, set[str]] = {}
    for me, path in MODULES.items():
        if path.name == "__init__.py":
            continue
        pkg = me.rsplit(".", 1)[0]
        graph[me] = {t for t in imports(path) if t.rsplit(".", 1)[0] == pkg and t in MODULES and t != me
                     and MODULES[t].name != "__init__.py"}
    assert not cycles(graph), cycles(graph)


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_function_longer_than_80_lines():
    long = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.name}:{node.name} {n} lines")
    assert not long, long
