"""The layer order written in evalsuite/__init__.py is the one the import-linter contract enforces, core
imports nothing above it, and nothing decides a metric's facts by parsing its name outside the catalogue."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import evalsuite
from evalsuite.core import version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project's floor is 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "evalsuite"


def _imports(path: Path) -> set[str]:
    """Every evalsuite module a file imports, at any depth (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from evalsuite import metrics` imports a submodule, `... import __version__` the root
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_module = (ROOT / sub.replace(".", "/")).is_dir() or (
                    ROOT / f"{sub.replace('.', '/')}.py"
                ).exists()
                out.add(sub if is_module else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m == "evalsuite" or m.startswith("evalsuite.")}


def test_docstring_layers_are_the_contract():
    doc = evalsuite.__doc__ or ""
    block = doc.split("each other):", 1)[1].split("``make lint``", 1)[0]
    written = [re.split(r"\s{2,}", ln.strip())[0] for ln in block.strip().splitlines()]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    assert written == layers


def test_core_imports_only_core():
    for path in (PKG / "core").glob("*.py"):
        bad = {m for m in _imports(path) if not m.startswith("evalsuite.core")}
        assert not bad, (path.name, bad)


def test_version_lives_in_core_and_nothing_imports_the_package_root():
    assert evalsuite.__version__ == version.__version__
    for path in PKG.rglob("*.py"):
        if path.parent != PKG:
            assert "evalsuite" not in _imports(path), path


def test_no_name_parsing_helpers_left():
    # what a metric is comes from evalsuite.metrics.catalogue; the old name-parsing helpers are gone
    for path in PKG.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "metric_direction" not in text and "metric_group" not in text, path
        for prefix in ("robust/", "ood/", "sparsity/"):
            assert f'startswith("{prefix}")' not in text, (path, prefix)
