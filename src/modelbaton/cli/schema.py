"""``baton schema``: direction-aware compatibility of model output schemas, before any deploy.

Exit codes: 0 compatible, 1 breaking, 2 usage error. A raw change that breaks a direction but is
absorbed by the registered normalizers (both versions normalize to the same canonical contract,
which is all that workflows store and read) is listed as breaking-but-covered and does not fail
the command unless --strict is given. Any breaking change in the canonical contract itself, or a
version without a normalizer, always fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import ProjectOption
from modelbaton.compat import (
    PairReport,
    TransitiveReport,
    check_transitive,
)
from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.schemas import SchemaRef, catalog_ref, compare, resolve

app = typer.Typer(
    no_args_is_help=True,
    help="Direction-aware compatibility of model output schemas, before any deploy (exit 0 "
    "compatible, 1 breaking, 2 usage error).",
)

CatalogOption = typer.Option(None, "--catalog", help="Catalog file (default MODELBATON_CATALOG).")
StrictOption = typer.Option(False, "--strict", help="Fail on breaking changes even if covered.")


def _yes(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]BREAKS[/]"


def _render_pair(pair: PairReport) -> None:
    # Version names, paths and details (labels) come from the catalog: escape Rich markup.
    table = Table(title=escape(f"{pair.old} -> {pair.new}"), title_justify="left")
    for col in ("path", "change", "BACKWARD", "FORWARD", "detail"):
        table.add_column(col, overflow="fold")
    for c in pair.changes:
        table.add_row(
            escape(c.path),
            c.kind.value,
            "breaks" if c.breaks_backward else "ok",
            "breaks" if c.breaks_forward else "ok",
            escape(c.detail),
        )
    if pair.changes:
        console.print(table)
    else:
        console.print(escape(f"{pair.old} -> {pair.new}: no changes"))
    console.print(
        f"  BACKWARD (new code replays old histories): {_yes(pair.backward_ok)}   "
        f"FORWARD (in-flight old code gets new output): {_yes(pair.forward_ok)}   "
        f"FULL: {_yes(pair.backward_ok and pair.forward_ok)}"
    )
    if pair.coverage:
        console.print(f"  normalization: {escape(pair.coverage)}")


@app.command()
def diff(
    old: str = typer.Argument(..., help="Catalog version (v1) or raw schema (schema:1)."),
    new: str = typer.Argument(..., help="Catalog version (v2) or raw schema (schema:2)."),
    catalog: Path | None = CatalogOption,
    strict: bool = StrictOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Every change from OLD to NEW, the directions it breaks, and normalizer coverage, in the
    project's contracts registry (catalog versions from its catalog, or --catalog)."""
    from modelbaton.cli._project import context

    ctx = context(project)
    registry = ctx.project.contracts
    try:
        cat = _project_catalog(ctx, catalog)
        pair = compare(
            resolve(old, cat, registry),
            resolve(new, cat, registry),
            cat,
            registry.canonical.__name__,
        )
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    emit(pair.as_dict(), as_json, lambda: _render_pair(pair))
    broken = not (pair.backward_ok and pair.forward_ok)
    if broken and (strict or not pair.covered_by_normalizers):
        raise typer.Exit(1)


def _project_catalog(ctx: Any, path: Path | None) -> Catalog | None:
    """``--catalog``, else the project's (``MODELBATON_CATALOG`` or its key), else none; read
    against the project's registry."""
    if path is not None:
        return load_catalog(path, contracts=ctx.project.contracts)
    catalog: Catalog | None = ctx.catalog() if ctx.catalog_source is not None else None
    return catalog


def _transitive_dict(report: TransitiveReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "compatible": report.compatible,
        "pairs": [p.as_dict() for p in report.pairs],
    }


@app.command()
def check(
    catalog: Path | None = CatalogOption,
    strict: bool = StrictOption,
    histories: list[Path] = typer.Option(
        None,
        "--histories",
        help="Folders of recorded histories whose payloads today's types must decode "
        "(default: the project's histories folder).",
    ),
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """FULL_TRANSITIVE over the project's catalog versions, its registry's raw schemas and its
    canonical contract; every catalog model's output schema has a model call in the workflow
    code; and the types its workflows, activities and updates declare today decode every
    recorded history's payloads."""
    from modelbaton.cli._project import context
    from modelbaton.controller.workflow import RolloutControllerWorkflow
    from modelbaton.ops.project_checks import (
        canonical_report,
        check_histories,
        contracts_report,
        types_of,
    )
    from modelbaton.rollout.workflow import RolloutWorkflow

    ctx = context(project)
    found = ctx.project
    registry = found.contracts
    served = ctx.spec().schema_versions
    for folder in histories or []:
        if not folder.is_dir():
            raise fail(f"--histories {escape(str(folder))}: not a folder")
    folders = list(histories or []) or (
        [found.histories_path] if found.histories_path is not None else []
    )
    try:
        cat = _project_catalog(ctx, catalog)
        refs = [catalog_ref(v, cat, registry) for v in cat.versions] if cat else []
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    reports: list[TransitiveReport] = []
    if cat is not None:
        canonical = registry.canonical.__name__

        def pair(a: SchemaRef, b: SchemaRef) -> PairReport:
            return compare(a, b, cat, canonical)

        reports.append(check_transitive("catalog versions", refs, pair))
    reports += [contracts_report(registry), canonical_report(registry)]
    # A catalog model whose output schema the workflow code never calls cannot be run at all.
    unread = [
        {"model": e.config.model_id, "version": e.config.version, "schema": schema}
        for e in (cat.entries if cat else [])
        if served is not None and (schema := e.config.output_schema_version) not in served
    ]
    # The project's own definitions, and modelbaton's workflows that run on its queue.
    types = types_of(
        [*found.workflows, RolloutWorkflow, RolloutControllerWorkflow], found.activity_modules
    )
    decoded = [check_histories(f, types) for f in folders]
    covered_breaks = any(not (p.backward_ok and p.forward_ok) for r in reports[:2] for p in r.pairs)
    ok = (
        not unread
        and all(r.compatible for r in reports)
        and not (strict and covered_breaks)
        and all(d.ok for d in decoded)
    )

    def render() -> None:
        for report in reports:
            console.rule(f"{escape(report.name)}: FULL_TRANSITIVE")
            if not report.pairs:
                console.print("one version: nothing to compare")
            for p in report.pairs:
                _render_pair(p)
        for u in unread:
            console.print(
                escape(
                    f"model {u['model']}:{u['version']} declares output schema v{u['schema']}, "
                    "which the workflow code never calls"
                ),
                style="red",
            )
        for folder, d in zip(folders, decoded, strict=True):
            console.rule(f"histories in {escape(str(folder))}: today's types")
            console.print(
                f"{d.payloads} payloads in {d.histories} histories"
                + (" decode" if d.ok else f": {len(d.failures)} do not decode")
            )
            for failure in d.failures[:20]:
                console.print(f"[red]{escape(str(failure))}[/]")
        console.print(
            "[bold green]compatible[/]" if ok else "[bold red]breaking changes not covered[/]"
        )

    emit(
        {
            "project": found.name,
            "compatible": ok,
            "models_without_model_call": unread,
            "reports": [_transitive_dict(r) for r in reports],
            "histories": {str(f): d.as_dict() for f, d in zip(folders, decoded, strict=True)},
        },
        as_json,
        render,
    )
    if not ok:
        raise typer.Exit(1)
