"""The ``baton`` command line: a thin shell over the toolkit's packages."""

from __future__ import annotations

from typing import Any

import typer

from modelbaton.cli import (
    deploy,
    dev,
    drain,
    histories,
    models,
    ops,
    pipeline,
    rollout,
    schema,
    shadow,
    ui,
    upgrade,
)
from modelbaton.cli._boundary import EXIT_USAGE, BoundaryGroup
from modelbaton.cli._output import fail

#: Modules that only an extra installs (``pip install 'modelbaton[EXTRA]'``) -> the extras that
#: bring them. ``import modelbaton`` and every command that does not need one work without them.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "sklearn": ("reference",),
    "wordllama": ("reference",),
    "jinja2": ("ui",),
    "fastapi": ("ui", "reference"),
    "starlette": ("ui", "reference"),
    "uvicorn": ("ui", "reference"),
    "psycopg": ("postgres",),
}
#: Where two extras bring a module, the package importing it says which one the command needs.
_EXTRA_OF_PACKAGE = {"modelbaton.dashboard": "ui", "modelbaton.models": "reference"}
_ARGS_KEY = "modelbaton.args"


def missing_extra(exc: ImportError) -> str | None:
    """The extra that would have installed the module ``exc`` could not import, else None."""
    extras = EXTRA_MODULES.get((exc.name or "").partition(".")[0])
    if not extras:
        return None
    importer = ""
    tb = exc.__traceback__
    while tb is not None:  # the innermost modelbaton module on the way to the failed import
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("modelbaton."):
            importer = module
        tb = tb.tb_next
    for package, extra in _EXTRA_OF_PACKAGE.items():
        if extra in extras and (importer == package or importer.startswith(package + ".")):
            return extra
    return extras[0]


class _BatonGroup(BoundaryGroup):
    """The boundary, plus one line naming the extra when a command needs one that is missing."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_ARGS_KEY] = list(args)
        parsed: list[str] = super().parse_args(ctx, args)
        return parsed

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ImportError as exc:
            extra = missing_extra(exc)
            if extra is None:
                raise
            command = " ".join(["baton", *self._command_words(ctx)])
            raise fail(
                f"{command} needs the {extra!r} extra: pip install 'modelbaton[{extra}]'",
                EXIT_USAGE,
            ) from None

    def _command_words(self, ctx: Any) -> list[str]:
        """The (sub)command names the user typed, e.g. ``["models", "serve"]``."""
        words: list[str] = []
        group: Any = self
        for arg in ctx.meta.get(_ARGS_KEY, []):
            get_command = getattr(group, "get_command", None)
            sub = get_command(ctx, arg) if get_command is not None else None
            if sub is None:
                break
            words.append(arg)
            group = sub
        return words


app = typer.Typer(
    cls=_BatonGroup,
    name="baton",
    help="Safe model upgrades for AI pipelines on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(schema.app, name="schema")
app.add_typer(models.app, name="models")
app.add_typer(dev.app, name="dev")
app.add_typer(rollout.app, name="rollout")
app.add_typer(shadow.app, name="shadow")
pipeline.register(app)
ops.register(app)
upgrade.register(app)
app.command()(ui.ui)
deploy.register(app)
drain.register(app)
histories.register(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"baton (modelbaton) {version('modelbaton')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Safe model upgrades for AI pipelines on Temporal."""


def run(command: Any) -> None:
    """Run a ``baton`` command tree, then leave without interpreter finalization.

    temporalio 1.35's Rust runtime keeps threads that may call back into Python while the
    interpreter finalizes, which aborts the process ("Fatal Python error: PyGILState_Release",
    exit code 134) after the command has done its work and printed its output, making every exit
    code random. Once output is flushed and logging shut down there is nothing left to finalize
    that matters, so we exit with the command's own code directly.
    """
    import contextlib
    import logging
    import os
    import sys

    code: int
    try:
        command()
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(code)
