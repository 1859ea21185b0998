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
from modelbaton.compat import (
    PairReport,
    TransitiveReport,
    check_transitive,
    compare_schemas,
    model_schema,
)
from modelbaton.contracts import CANONICAL_VERSIONS, OUTPUT_SCHEMAS
from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.schemas import SchemaRef, compare, resolve
from modelbaton.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    help="Direction-aware compatibility of model output schemas, before any deploy (exit 0 "
    "compatible, 1 breaking, 2 usage error).",
)

CatalogOption = typer.Option(None, "--catalog", help="Catalog file (default MODELBATON_CATALOG).")
StrictOption = typer.Option(False, "--strict", help="Fail on breaking changes even if covered.")


def _catalog(path: Path | None) -> Catalog:
    try:
        return load_catalog(path or Settings.from_env().catalog_path)
    except ModelBatonError as exc:
        raise fail_error(exc) from None


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
    as_json: bool = JsonOption,
) -> None:
    """Every change from OLD to NEW, the directions it breaks, and normalizer coverage."""
    cat = _catalog(catalog)
    try:
        pair = compare(resolve(old, cat), resolve(new, cat), cat)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    emit(pair.as_dict(), as_json, lambda: _render_pair(pair))
    broken = not (pair.backward_ok and pair.forward_ok)
    if broken and (strict or not pair.covered_by_normalizers):
        raise typer.Exit(1)


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
        help="Folders of recorded histories whose payloads today's message types must decode "
        "(default: tests/histories and tests/lifecycle_histories when they exist here).",
    ),
    project: Path | None = typer.Option(
        None,
        "--project",
        help="A project config: check its contracts registry and its histories folder instead "
        "(default: MODELBATON_PROJECT, else a config found here or above whose registry is "
        "not the classification one).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """FULL_TRANSITIVE over the catalog versions, the raw schemas and the canonical contract; every
    catalog model's output schema has a classify activity; and today's workflow, activity and
    update types decode every recorded history's payloads."""
    if project is None:
        from modelbaton.cli._project import context
        from modelbaton.contracts.registry import CLASSIFICATION
        from modelbaton.project import PROJECT_ENV

        # The project every command finds; the checks below are those of the classification
        # registry (its catalog, its classify activities), so another registry gets its own.
        found = context(None).project
        if found.source == PROJECT_ENV or found.contracts is not CLASSIFICATION:
            project = found.path
    if project is not None:
        _check_project(project, strict, list(histories or []), as_json)
        return
    from modelbaton.ops.history_types import check_histories
    from modelbaton.ops.history_types import describe as describe_decoding
    from modelbaton.pipeline.activities import CLASSIFY_BY_SCHEMA

    cat = _catalog(catalog)
    folders = list(histories or [])
    for folder in folders:
        if not folder.is_dir():
            raise fail(f"--histories {escape(str(folder))}: not a folder")
    if not folders:
        folders = [
            p for p in (Path("tests/histories"), Path("tests/lifecycle_histories")) if p.is_dir()
        ]
    decoding = check_histories(folders)
    missing = [
        f"output schema v{v}" for v, s in OUTPUT_SCHEMAS.items() if not callable(s.normalizer)
    ]
    # A catalog model whose output schema no classify activity reads cannot be run at all.
    unread = [
        {"model": e.config.model_id, "version": e.config.version, "schema": schema}
        for e in cat.entries
        if (schema := e.config.output_schema_version) not in CLASSIFY_BY_SCHEMA
    ]
    try:
        refs = [resolve(v, cat) for v in cat.versions]
        raw_refs = [resolve(f"schema:{v}", cat) for v in sorted(OUTPUT_SCHEMAS)]
    except ModelBatonError as exc:
        raise fail_error(exc) from None

    def pair(a: SchemaRef, b: SchemaRef) -> PairReport:
        return compare(a, b, cat)

    catalog_report = check_transitive("catalog versions", refs, pair)
    raw_report = check_transitive("raw output schemas", raw_refs, pair)
    canonical = [
        (f"canonical:v{v}", model_schema(m)) for v, m in sorted(CANONICAL_VERSIONS.items())
    ]
    canonical_report = check_transitive("canonical contract", canonical, compare_schemas)
    reports = (catalog_report, raw_report, canonical_report)

    covered_breaks = any(not (p.backward_ok and p.forward_ok) for r in reports[:2] for p in r.pairs)
    ok = (
        not missing
        and not unread
        and all(r.compatible for r in reports)
        and not (strict and covered_breaks)
        and decoding.ok
    )

    def render() -> None:
        for report in reports:
            console.rule(f"{report.name}: FULL_TRANSITIVE")
            if not report.pairs:
                console.print("one version: nothing to compare")
            for p in report.pairs:
                _render_pair(p)
        for m in missing:
            console.print(f"[red]no normalizer for {m}[/]")
        for u in unread:
            console.print(
                escape(
                    f"model {u['model']}:{u['version']} declares output schema v{u['schema']}, "
                    "which no classify activity reads"
                ),
                style="red",
            )
        console.rule("recorded histories: today's message types")
        console.print(
            f"{decoding.payloads} payloads in {decoding.histories} histories"
            + (" decode" if decoding.ok else f": {len(decoding.failures)} do not decode")
        )
        for failure in decoding.failures[:20]:
            console.print(f"[red]{escape(str(failure))}[/]")
        console.print(
            "[bold green]compatible[/]" if ok else "[bold red]breaking changes not covered[/]"
        )

    emit(
        {
            "compatible": ok,
            "missing_normalizers": missing,
            "models_without_classify_activity": unread,
            "reports": [_transitive_dict(r) for r in reports],
            "history_payloads": describe_decoding(decoding),
        },
        as_json,
        render,
    )
    if not ok:
        raise typer.Exit(1)


def _check_project(path: Path, strict: bool, histories: list[Path], as_json: bool) -> None:
    """``schema check --project``: the project's registry and histories, read off its own
    workflow and activity definitions."""
    from modelbaton.ops.project_checks import check_histories, contracts_report, types_of
    from modelbaton.project import load_project

    try:
        project = load_project(path)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    for folder in histories:
        if not folder.is_dir():
            raise fail(f"--histories {escape(str(folder))}: not a folder")
    folders = histories or ([project.histories_path] if project.histories_path else [])
    report = contracts_report(project.contracts)
    types = types_of(project.workflows, project.activity_modules)
    decoded = [check_histories(f, types) for f in folders]
    covered_breaks = any(not (p.backward_ok and p.forward_ok) for p in report.pairs)
    ok = report.compatible and not (strict and covered_breaks) and all(d.ok for d in decoded)

    def render() -> None:
        console.rule(f"{escape(report.name)}: FULL_TRANSITIVE")
        if not report.pairs:
            console.print("one version: nothing to compare")
        for p in report.pairs:
            _render_pair(p)
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
            "project": project.name,
            "compatible": ok,
            "reports": [_transitive_dict(report)],
            "histories": {str(f): d.as_dict() for f, d in zip(folders, decoded, strict=True)},
        },
        as_json,
        render,
    )
    if not ok:
        raise typer.Exit(1)
