"""The frozen releases stay what they are: self-contained files (no import of another release
or of the live workflow module) whose bytes do not change. A deliberate change to one (there
should be none: ship a new release instead) must update its digest here, in the same commit."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from modelbaton.pipeline import releases

FOLDER = Path(releases.__file__).parent
FROZEN = {
    "r1_initial.py": "7bef7c73b7854256d3a9f866061d0242ea63307dd04bd25c82b449cf09de8420",
    "r2_patched.py": "8faa25e9401ff0df31a77d0f76398eb601ba9ea1e167ac49e1dd405cb0da1c90",
    "r3_deprecated.py": "a1eec14771cd655f71eaf11e314c0777bacd839466bf4f8022febefd08cd93d5",
    "r4_complete.py": "cf65e2650178807f4cb6c011adca3f204cdc4ef97eabfd5bff9a21de3f7dab44",
    "r5_assigned.py": "1bd5f7b405f52b493b9eb1530145a413a084285ebd9f603be54d2be5413ef761",
    "r7_restored.py": "d4278e646c68a95b000804f475131e6bca22bf6adbf3b90a9176bc28a837bf1e",
}


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_a_frozen_release_is_unchanged(name: str) -> None:
    digest = hashlib.sha256((FOLDER / name).read_bytes()).hexdigest()
    assert digest == FROZEN[name], f"{name} changed: frozen releases are never edited"


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_a_frozen_release_imports_no_other_workflow_code(name: str) -> None:
    tree = ast.parse((FOLDER / name).read_text())
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    shared = {
        m
        for m in imported
        if m.startswith(("modelbaton.pipeline.releases", "modelbaton.pipeline.workflow"))
    }
    assert shared == set(), f"{name} imports {shared}"


def test_every_release_but_the_current_one_is_frozen() -> None:
    files = {p.name for p in FOLDER.glob("r*.py")}
    assert files == set(FROZEN)
    assert releases.module_of(releases.CURRENT_RELEASE) == "modelbaton.pipeline.workflow"
    for name in releases.RELEASES:
        if name != releases.CURRENT_RELEASE:
            assert releases.source_of(name).removeprefix("pipeline/releases/") in FROZEN, name
