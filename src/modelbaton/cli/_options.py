"""Options several commands share, spelled and explained once."""

from __future__ import annotations

import typer

SampleOption = typer.Option(
    None,
    "--sample",
    min=1,
    help="A uniform random sample of this many of the workflows selected (default: all).",
)
SeedOption = typer.Option(0, "--seed", help="The same seed picks the same sample.")
