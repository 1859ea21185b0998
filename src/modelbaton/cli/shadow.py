"""``baton shadow report``: a shadowed rollout's comparison and its READY / NOT READY verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import ProjectOption, context
from modelbaton.errors import ModelBatonError

if TYPE_CHECKING:
    from modelbaton.cli._project import Context

app = typer.Typer(
    no_args_is_help=True,
    help="Compare a shadowed candidate's answers with the baseline's, and gate its promotion.",
)


def load_report(
    rollout_id: str | None, target_width: float | None = None, *, ctx: Context | None = None
) -> Any:
    """The report of ``rollout_id`` (default: the latest shadowed rollout) from the results
    database, judged by the ``[shadow_gate]`` of the project's catalog (``ctx``'s, else the
    project found as every command finds it)."""
    from modelbaton.pipeline.store import ResultsStore
    from modelbaton.shadow.report import build_report
    from modelbaton.shadow.store import ShadowStore

    ctx = ctx or context(None, needs_catalog="shadow report")
    settings = ctx.settings
    gate = ctx.catalog().shadow_gate
    if target_width is not None:
        gate = gate.model_copy(update={"target_width": target_width})
    store = ResultsStore(settings.database_url)
    try:
        shadows = ShadowStore(store.engine)
        known = shadows.rollouts()
        chosen = rollout_id or (known[-1] if known else None)
        if chosen is None:
            raise fail(
                "no shadow comparisons recorded yet; start one with 'baton rollout start "
                "--candidate VERSION --shadow'"
            )
        if chosen not in known:
            raise fail(
                f"no shadow comparisons for rollout {chosen!r} "
                f"(known: {', '.join(known) or 'none'})"
            )
        return build_report(chosen, shadows.rows(chosen), gate)
    finally:
        store.close()


@app.command()
def report(
    rollout_id: str | None = typer.Option(
        None, "--rollout", help="The rollout id (default: the latest one with comparisons)."
    ),
    target_width: float | None = typer.Option(
        None,
        "--target-width",
        help="Agreement interval width to plan for, in (0, 1) (default: the catalog's gate).",
    ),
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """A shadow's comparison and its verdict: exit 0 when READY, 1 when NOT READY.

    Agreement with its interval (per field, where the comparator records fields), confusion
    and distances (a classification's), errors, latency, reviewed accuracy and the noise
    baseline.
    """
    if target_width is not None and not 0.0 < target_width < 1.0:
        raise fail(f"--target-width must be within (0, 1), got {target_width}")
    ctx = context(project, needs_catalog="shadow report")
    try:
        result = load_report(rollout_id, target_width, ctx=ctx)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    emit(result.as_dict(), as_json, lambda: render(result))
    if not result.ready:
        raise typer.Exit(1)


def _pct(rate: dict[str, Any] | None) -> str:
    if not rate:
        return "-"
    return f"{rate['rate']:.1%} [{rate['low']:.1%}, {rate['high']:.1%}] (n={rate['n']})"


def render(r: Any) -> None:
    versions = (
        f"candidate {', '.join(r.candidate_versions)} against baseline "
        f"{', '.join(r.baseline_versions)}"
    )
    console.print(f"[bold]shadow of rollout {escape(r.rollout_id)}[/]: {escape(versions)}")
    d = r.as_dict()
    facts = Table("measure", "value", show_header=False)
    facts.add_row("documents shadowed", str(r.shadowed))
    facts.add_row("agreement (95 % Wilson)", _pct(d["agreement"]))
    for name, rate in d["agreement_by_field"].items():
        facts.add_row(f"  agreement on {escape(name)}", _pct(rate))
    if r.more_documents_for_width is not None:
        facts.add_row(
            f"more documents for a {r.gate.target_width:.0%} wide interval",
            str(r.more_documents_for_width),
        )
    if r.distance:
        js = r.distance
        facts.add_row(
            "distance (the comparator's: Jensen-Shannon for labels)",
            f"p50 {js['p50']:.3f}, p90 {js['p90']:.3f}, max {js['max']:.3f}",
        )
    if r.confidence_delta:
        cd = r.confidence_delta
        facts.add_row(
            "confidence, candidate minus baseline",
            f"mean {cd['mean']:+.3f}, median {cd['p50']:+.3f}, mean absolute {cd['mean_abs']:.3f}",
        )
    if r.only_candidate_classes or r.only_baseline_classes:
        facts.add_row(
            "classes one side lacks",
            f"candidate only {r.only_candidate_classes}, baseline only {r.only_baseline_classes}",
        )
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r.candidate_errors.items())) or "none"
    facts.add_row("candidate errors", f"{errors} (schema errors: {r.schema_errors})")
    for arm in ("baseline", "candidate"):
        lat = r.latency_ms.get(arm)
        facts.add_row(
            f"{arm} latency",
            f"p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms (n={lat['n']})" if lat else "-",
        )
    if r.reviewed:
        rv = r.reviewed
        facts.add_row(
            "accuracy on reviewed documents",
            f"baseline {_pct(rv['baseline_accuracy'])}, candidate {_pct(rv['candidate_accuracy'])}"
            f", McNemar exact p = {rv['mcnemar_p']:.3g}",
        )
    if r.noise:
        facts.add_row("noise baseline (baseline vs itself)", _pct(r.noise["agreement"]))
    console.print(facts)
    if r.confusion:
        candidates = sorted({c for row in r.confusion.values() for c in row})
        table = Table("baseline \\ candidate", *map(escape, candidates), title="label confusion")
        for base, row in r.confusion.items():
            table.add_row(escape(base), *(str(row.get(c, 0)) for c in candidates))
        console.print(table)
    colour = "green" if r.ready else "red"
    console.print(f"[bold {colour}]{r.verdict}[/]")
    for reason in r.reasons:
        console.print(f"  - {escape(reason)}")
