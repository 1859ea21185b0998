"""The ``baton`` command line: a thin shell over the toolkit's packages."""

from __future__ import annotations

from pathlib import Path

import typer

from modelbaton.cli import deploy, dev, models, ops, pipeline, rollout, schema, shadow, ui, upgrade
from modelbaton.cli._boundary import BoundaryGroup

app = typer.Typer(
    cls=BoundaryGroup,
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
