"""``baton --help`` stays fast: the CLI imports no heavy library until a command needs it."""

from __future__ import annotations

import subprocess
import sys

from modelbaton.cli.models import DEFAULT_MAX_TEXT_BYTES
from modelbaton.models.server import DEFAULT_MAX_TEXT_BYTES as SERVER_DEFAULT

HEAVY = ("sklearn", "scipy", "sqlalchemy", "temporalio.client", "temporalio.worker", "uvicorn")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    probe = (
        "import sys, modelbaton.app.main; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "", f"'baton --help' imports {loaded}"


def test_the_cli_states_the_servers_text_cap() -> None:
    assert DEFAULT_MAX_TEXT_BYTES == SERVER_DEFAULT


def test_version() -> None:
    from typer.testing import CliRunner

    from modelbaton.app.main import baton as app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("baton (modelbaton) ")


def test_every_option_and_command_has_help() -> None:
    import typer
    from typer.main import get_command

    from modelbaton.app.main import baton as app

    missing: list[str] = []

    def walk(command: object, path: str) -> None:
        params = getattr(command, "params", [])
        if not (getattr(command, "help", None) or getattr(command, "short_help", None)):
            missing.append(f"{path} (command)")
        for param in params:
            if getattr(param, "param_type_name", "") == "option" and not getattr(param, "help", ""):
                missing.append(f"{path} {param.opts[0]}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    assert isinstance(app, typer.Typer)
    walk(get_command(app), "baton")
    assert missing == []
