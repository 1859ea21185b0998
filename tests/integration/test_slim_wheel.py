"""``pip install modelbaton`` for real: build the wheel, install it into a fresh venv without any
extra, and use it there.

The install is constrained to the versions of uv.lock (exported without extras or dev tools), so
it comes from uv's cache like ``make install`` and is the same on every run; constraints pin
versions, they install nothing. The venv lives in tmp_path and goes with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import modelbaton

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: Packages only the extras bring: none may be in the slim venv.
EXTRA_PACKAGES = ("sklearn", "wordllama", "fastapi", "uvicorn", "jinja2", "psycopg")


def _uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv not found on PATH nor in .tools/ (run make install)"
    return found


def _run(
    argv: list[str], env: dict[str, str], cwd: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def test_the_wheel_without_extras(tmp_path: Path) -> None:
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBATON_", "TEMPORAL_"))}
    env |= {
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON_PREFERENCE": "only-system",
        "MODELBATON_HOME": str(tmp_path / "home"),
    }
    env.pop("VIRTUAL_ENV", None)

    dist = tmp_path / "dist"
    built = _run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO)], env, timeout=120)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("modelbaton-*.whl")
    assert wheel.name.startswith(f"modelbaton-{modelbaton.__version__}-")

    constraints = tmp_path / "constraints.txt"
    exported = _run(
        [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
         "--output-file", str(constraints)],
        env,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "scikit-learn" not in constraints.read_text()  # the export is the core only

    venv = tmp_path / "venv"
    made = _run([uv, "venv", "--quiet", "--python", "python3", str(venv)], env)
    assert made.returncode == 0, made.stderr
    python, baton = venv / "bin" / "python", venv / "bin" / "baton"
    installed = _run(
        [uv, "pip", "install", "--python", str(python), "--constraint", str(constraints),
         str(wheel)],
        env,
        timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    # No extra came along: not their modules, not the dev-stack's temporal binary.
    probe = (
        "import importlib.util, sys, modelbaton\n"
        f"print([m for m in {EXTRA_PACKAGES!r} if importlib.util.find_spec(m) is not None])\n"
        f"print([m for m in {EXTRA_PACKAGES!r} if m in sys.modules])\n"
        "print(modelbaton.__version__)\n"
    )
    imported = _run([str(python), "-c", probe], env, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == ["[]", "[]", modelbaton.__version__]
    assert not (venv / "bin" / "temporal").exists()

    version = _run([str(baton), "--version"], env)
    assert (version.returncode, version.stdout) == (
        0,
        f"baton (modelbaton) {modelbaton.__version__}\n",
    )
    helped = _run([str(baton), "--help"], env)
    assert helped.returncode == 0, helped.stderr
    assert "schema" in helped.stdout

    # Pure contracts: the catalog's schemas and every committed history's payloads.
    checked = _run([str(baton), "schema", "check"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "histories decode" in checked.stdout
    assert checked.stdout.rstrip().endswith("compatible")

    for argv, extra in [
        (["ui"], "ui"),
        (["models", "serve"], "reference"),
        (["models", "train"], "reference"),
    ]:
        refused = _run([str(baton), *argv], env)
        command = " ".join(["baton", *argv])
        assert (refused.returncode, refused.stderr) == (
            2,
            f"error: {command} needs the '{extra}' extra: pip install 'modelbaton[{extra}]'\n",
        ), argv

    stack = _run([str(baton), "dev", "up", "--home", str(tmp_path / "stack")], env)
    assert stack.returncode == 2, stack.stderr
    assert stack.stderr.startswith("error: the embedded stack needs the 'dev-stack' extra (")
    assert stack.stderr.endswith("): pip install 'modelbaton[dev-stack]'\n")
    assert len(stack.stderr.splitlines()) == 1
