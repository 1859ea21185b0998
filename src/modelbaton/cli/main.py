"""The ``baton`` command line: a thin shell over the toolkit's packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelbaton.cli import deploy, dev, models, ops, pipeline, rollout, schema, shadow, ui, upgrade
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


@app.command()
def demo(
    per_batch: int = typer.Option(12, min=2, max=500, help="Documents per batch."),
    review_threshold: float = typer.Option(
        0.8, min=0.0, max=1.0, help="Below this confidence a document waits for review."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Leave the stack running afterwards, to explore the Web UI."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="State directory (default: <MODELBATON_HOME>/demo, cleared first)."
    ),
    example: str | None = typer.Option(
        None,
        "--example",
        help="Run the demo of an example pipeline instead (examples/NAME/demo.py), e.g. "
        "invoice_extraction.",
    ),
) -> None:
    """Run the model-upgrade demo end to end on the embedded stack, then stop it."""
    if example is not None:
        raise typer.Exit(run_example(example))
    from modelbaton.demo import main

    raise typer.Exit(
        main(home=home, per_batch=per_batch, review_threshold=review_threshold, keep=keep)
    )


#: The repository's examples folder (beside ``src/``; absent from an installed wheel).
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def known_examples(folder: Path = EXAMPLES) -> list[str]:
    """Examples that have a demo: ``examples/NAME/demo.py``."""
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob("*/demo.py"))


def run_example(name: str, folder: Path = EXAMPLES) -> int:
    """Import ``examples/<name>/demo.py`` (with ``examples/`` on the path) and run its ``main``."""
    import importlib
    import sys

    from modelbaton.cli._output import fail

    known = known_examples(folder)
    if name not in known:
        where = f"known: {', '.join(known)}" if known else f"no examples folder at {folder}"
        raise fail(f"--example {name!r}: no such example with a demo ({where})")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    code: int = importlib.import_module(f"{name}.demo").main()
    return code


def main() -> None:
    """The ``baton`` entry point: run the app, then leave without interpreter finalization.

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
        app()
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
