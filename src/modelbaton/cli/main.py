"""The ``baton`` command line: a thin shell over the toolkit's packages."""

from __future__ import annotations

import typer

from modelbaton.cli import dev, models, ops, pipeline, schema

app = typer.Typer(
    name="baton",
    help="Safe model upgrades for AI pipelines on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(schema.app, name="schema")
app.add_typer(models.app, name="models")
app.add_typer(dev.app, name="dev")
pipeline.register(app)
ops.register(app)
