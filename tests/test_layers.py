"""The layering rules, checked on the source: ``storage/`` imports nothing above it, and
``security/`` only the storage schema it reads; ``storage/`` is the only package with SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "mindharbor"
# What each low layer may import from the package (anything else is above it).
ALLOWED = {
    "storage": (
        "mindharbor.storage",
        "mindharbor.errors",
        "mindharbor.security",
        "mindharbor.settings",
    ),
    "security": (
        "mindharbor.security",
        "mindharbor.errors",
        "mindharbor.settings",
        "mindharbor.storage.schema",
    ),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n == "mindharbor" or n.startswith("mindharbor.")]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_low_layers_import_nothing_above_them(layer: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            if not name.startswith(ALLOWED[layer]):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []
