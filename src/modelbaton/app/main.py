"""The ``baton`` entry point: the shell's commands (``modelbaton.cli``) plus the ones only the
composition root can run (``worker``, ``demo``), in one command tree."""

from __future__ import annotations

from modelbaton.app import commands
from modelbaton.cli.main import app as baton
from modelbaton.cli.main import run

commands.register(baton)


def main() -> None:
    """The installed ``baton`` command."""
    run(baton)


__all__ = ["baton", "main"]
