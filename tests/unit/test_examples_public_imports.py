"""Everything under examples/ is built on modelbaton's public names only (``modelbaton.__all__``):
no submodule import, no private name, no attribute of the package outside ``__all__``."""

from __future__ import annotations

import ast
from pathlib import Path

import modelbaton

EXAMPLES = Path(__file__).parents[2] / "examples"


def violations(source: str, where: str) -> list[str]:
    """Every non-public use of modelbaton in ``source``, as ``where:line: what``."""
    public = set(modelbaton.__all__)
    found: list[str] = []
    aliases: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "modelbaton":
                    aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("modelbaton."):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("modelbaton."):
                found.append(f"{where}:{node.lineno}: from {node.module} import ...")
            elif node.module == "modelbaton":
                found += [
                    f"{where}:{node.lineno}: from modelbaton import {a.name}"
                    for a in node.names
                    if a.name not in public
                ]
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in public
        ):
            found.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_examples_import_only_public_names() -> None:
    files = sorted(EXAMPLES.rglob("*.py"))
    assert len(files) >= 5, f"no example sources found under {EXAMPLES}"
    found = [v for f in files for v in violations(f.read_text(), str(f.relative_to(EXAMPLES)))]
    assert found == []


def test_the_check_catches_each_kind_of_non_public_use() -> None:
    source = "\n".join(
        [
            "import modelbaton",
            "import modelbaton.contracts.rollout",
            "from modelbaton.pipeline.model_call import ModelRoute",
            "from modelbaton import ModelRoute, normalize_v1",
            "x = modelbaton.assign",
            "y = modelbaton._EXPORTS",
        ]
    )
    assert violations(source, "f.py") == [
        "f.py:2: import modelbaton.contracts.rollout",
        "f.py:3: from modelbaton.pipeline.model_call import ...",
        "f.py:4: from modelbaton import normalize_v1",
        "f.py:6: modelbaton._EXPORTS",
    ]
