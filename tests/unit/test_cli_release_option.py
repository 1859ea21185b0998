"""``baton worker --release``: the help lists every release, and an unknown one is refused."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from modelbaton.app.main import baton as app


def _release_help() -> str:
    command = typer.main.get_command(app)
    worker = command.commands["worker"]  # type: ignore[attr-defined]
    (option,) = [p for p in worker.params if p.name == "release"]
    return str(option.help)


def test_the_help_lists_every_release_including_the_default_and_restored() -> None:
    text = _release_help()
    for name in (
        "initial",
        "patched",
        "deprecated",
        "complete",
        "assigned",
        "shadow",
        "restored",
    ):
        assert name in text, f"{name} missing from: {text}"


def test_an_unknown_release_is_refused_in_one_line_before_connecting(tmp_path: Path) -> None:
    # No Temporal server anywhere: the release is checked first.
    result = CliRunner().invoke(
        app,
        ["worker", "--release", "bogus"],
        env={"MODELBATON_HOME": str(tmp_path), "TEMPORAL_ADDRESS": ""},
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "--release 'bogus'" in lines[0]
    assert "restored" in lines[0]
