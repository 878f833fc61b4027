"""The package reads as the pipeline: no stage imports a later one, and no function grows past 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "musesynth"
# Order of the pipeline; shared helpers (errors, atomic writes, devices, plots, outputs, music theory) come first.
STAGES = ["errors", "atomic", "device", "plotting", "outputs", "theory", "tokenize", "data", "models", "training",
          "generate", "evaluate", "ablate", "api", "studio", "commands", "cli", "train", "predict", "__main__",
          "__init__"]


def stage_of(module: str) -> int:
    parts = module.split(".")
    return STAGES.index(parts[1] if len(parts) > 1 else "__init__")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("musesynth"):
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("musesynth")]
    return out


def test_no_module_imports_a_later_stage():
    bad = []
    for path in PKG.rglob("*.py"):
        me = "musesynth." + ".".join(path.relative_to(PKG).with_suffix("").parts)
        for target in imports(path):
            if target != "musesynth" and stage_of(target) > stage_of(me):
                bad.append(f"{me} -> {target}")
    assert not bad, bad


def test_no_function_longer_than_80_lines():
    long = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.name}:{node.name} {n} lines")
    assert not long, long
