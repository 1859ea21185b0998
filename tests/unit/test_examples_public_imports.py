"""What sits on top of the library uses only public names.

- Everything under examples/ is built on ``modelbaton.__all__`` alone: no submodule import, no
  private name, no attribute of the package outside ``__all__``.
- The demo (``modelbaton.demo``) runs the reference pipeline, so it may also use the public names
  of the toolkit's packages (each package's ``__all__``), never a module inside one.
"""

from __future__ import annotations

from pathlib import Path

from public_surface import surfaces_of, violations

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
DEMO = ROOT / "src" / "modelbaton" / "demo"

#: The packages whose ``__all__`` the demo may import from.
DEMO_SURFACES = (
    "modelbaton",
    "modelbaton.contracts",
    "modelbaton.controller",
    "modelbaton.models",
    "modelbaton.pipeline",
    "modelbaton.rollout",
    "modelbaton.stack",
    "modelbaton.versioning",
)


def test_examples_import_only_public_names() -> None:
    files = sorted(EXAMPLES.rglob("*.py"))
    assert len(files) >= 5, f"no example sources found under {EXAMPLES}"
    surfaces = surfaces_of("modelbaton")
    found = [
        v for f in files for v in violations(f.read_text(), str(f.relative_to(EXAMPLES)), surfaces)
    ]
    assert found == []


def test_the_demo_imports_only_package_surfaces() -> None:
    files = sorted(DEMO.glob("*.py"))
    assert len(files) >= 8, f"no demo sources found under {DEMO}"
    surfaces = surfaces_of(*DEMO_SURFACES)
    found = [
        v for f in files for v in violations(f.read_text(), f.name, surfaces, own="modelbaton.demo")
    ]
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
            "from modelbaton.versioning import DeploymentControl, _EXPORTS",
            "from modelbaton.demo.documents import Batch",
        ]
    )
    surfaces = surfaces_of("modelbaton", "modelbaton.versioning")
    assert violations(source, "f.py", surfaces) == [
        "f.py:2: import modelbaton.contracts.rollout",
        "f.py:3: from modelbaton.pipeline.model_call import ...",
        "f.py:4: from modelbaton import normalize_v1",
        "f.py:7: from modelbaton.versioning import _EXPORTS",
        "f.py:8: from modelbaton.demo.documents import ...",
        "f.py:6: modelbaton._EXPORTS",
    ]
    assert violations(source, "f.py", surfaces, own="modelbaton.demo")[-2:] == [
        "f.py:7: from modelbaton.versioning import _EXPORTS",
        "f.py:6: modelbaton._EXPORTS",
    ]


def test_every_package_surface_resolves() -> None:
    """Each name in a package's ``__all__`` imports (a stale table entry fails here, not in use)."""
    import importlib

    for package, names in surfaces_of(*DEMO_SURFACES).items():
        module = importlib.import_module(package)
        for name in sorted(names):
            assert getattr(module, name) is not None, f"{package}.{name}"
