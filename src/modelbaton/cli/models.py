"""``baton models``: train, evaluate and serve the reference classifiers."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import load_catalog
from modelbaton.settings import Settings

#: The model server's request cap (``modelbaton.models.server.DEFAULT_MAX_TEXT_BYTES``); repeated
#: here so that ``baton --help`` does not import scikit-learn (a test keeps them equal).
DEFAULT_MAX_TEXT_BYTES = 256 * 1024

app = typer.Typer(no_args_is_help=True, help="Train, evaluate and serve the reference models.")

CatalogOption = typer.Option(None, "--catalog", help="Catalog file (default MODELBATON_CATALOG).")


@app.command()
def train() -> None:
    """Train the reference models, or load them from the cache when already trained."""
    from modelbaton.models.reference import REFERENCE_MODELS, load_or_train

    cache = Settings.from_env().cache_dir
    for name in REFERENCE_MODELS:
        model = load_or_train(name, cache)
        console.print(f"{name}: {len(model.classes)} classes, cached in {cache}")


@app.command("eval")
def eval_(as_json: bool = JsonOption) -> None:
    """Held-out accuracy and macro-F1 per reference model version."""
    cache = Settings.from_env().cache_dir
    from modelbaton.models.reference import REFERENCE_MODELS, evaluate

    reports = [evaluate(name, cache) for name in REFERENCE_MODELS]
    by = {r.version: r for r in reports}
    v2_beats_v1 = by["v2"].accuracy > by["v1"].accuracy and by["v2"].macro_f1 > by["v1"].macro_f1

    def render() -> None:
        table = Table(title="Held-out evaluation (fixed test split)")
        for col in ("version", "classes", "n_test", "accuracy", "macro-F1"):
            table.add_column(col, justify="left" if col == "version" else "right")
        for r in reports:
            table.add_row(
                r.version, str(r.n_classes), str(r.n_test), f"{r.accuracy:.4f}", f"{r.macro_f1:.4f}"
            )
        console.print(table)
        console.print(
            "v2 beats v1 on accuracy and macro-F1" if v2_beats_v1 else "[red]v2 does NOT beat v1[/]"
        )

    emit({"models": [asdict(r) for r in reports], "v2_beats_v1": v2_beats_v1}, as_json, render)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8601, min=1, max=65535, help="Port to listen on."),
    catalog: Path | None = CatalogOption,
    max_text_bytes: int = typer.Option(
        DEFAULT_MAX_TEXT_BYTES, min=1, help="Largest request text accepted, in bytes (else 413)."
    ),
    auth_token_env: str | None = typer.Option(
        None, help="Require this environment variable's value as a bearer token."
    ),
) -> None:
    """Serve every catalog model that has a reference artifact, each at its own endpoint."""
    settings = Settings.from_env()
    token = None
    if auth_token_env:
        token = os.environ.get(auth_token_env)
        if not token:
            raise fail(f"--auth-token-env: environment variable {auth_token_env} is not set")
    try:
        from modelbaton.models.server import create_app

        cat = load_catalog(catalog or settings.catalog_path)
        application = create_app(
            cat, settings.cache_dir, max_text_bytes=max_text_bytes, auth_token=token
        )
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    from modelbaton.models.server import serve

    serve(application, host, port)
