"""Act 9: every document's result, per batch, workflow branch and model version; the demo is OK
when every result is in the canonical contract, every workflow completed, and no document keeps
an unreviewed answer of the quietly wrong v4."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from modelbaton.contracts import NormalizedClassificationResult
from modelbaton.demo.documents import Batch
from modelbaton.pipeline import ClassificationOutcome

#: Bounds a failure of a workflow to finish once its review is in; never a pause.
RESULT_WITHIN = 120.0


async def summarize(console: Console, batches: Sequence[Batch]) -> int:
    """Wait for every result, print the table and the checks; return the exit code."""
    outcomes: list[ClassificationOutcome] = []
    for batch in batches:
        for handle in batch.handles.values():
            outcomes.append(await asyncio.wait_for(handle.result(), RESULT_WITHIN))
    truth: dict[str, str] = {}
    for b in batches:
        truth |= b.truth
    table = Table(title="Documents per workflow branch")
    for col in ("batch", "branch", "model", "schema", "auto", "reviewed", "escalated", "correct"):
        table.add_column(col, justify="right" if col not in ("batch", "branch") else "left")
    for batch in batches:
        ids = set(batch.handles)
        rows = Counter(
            (o.branch, o.result.model_version, o.result.schema_version)
            for o in outcomes
            if f"classify-{o.document_id}" in ids
        )
        for (branch, model, schema), _n in sorted(rows.items()):
            sel = [
                o
                for o in outcomes
                if f"classify-{o.document_id}" in ids
                and (o.branch, o.result.model_version) == (branch, model)
            ]
            by = Counter(o.outcome.value for o in sel)
            correct = sum(o.final_label == truth[f"classify-{o.document_id}"] for o in sel)
            table.add_row(
                batch.name,
                branch,
                model,
                str(schema),
                str(by["auto"]),
                str(by["reviewed"]),
                str(by["escalated"]),
                f"{correct}/{len(sel)}",
            )
    console.print(table)
    canonical = all(
        isinstance(o.result, NormalizedClassificationResult)
        and isinstance(o.result.scores_by_class, dict)
        for o in outcomes
    )
    # Ask each workflow, not visibility: visibility is eventually consistent and may lag the
    # results we have just received.
    statuses: Counter[str] = Counter()
    for batch in batches:
        for handle in batch.handles.values():
            status = (await handle.describe()).status
            statuses[status.name if status is not None else "UNKNOWN"] += 1
    failed = sum(n for status, n in statuses.items() if status != "COMPLETED")
    console.print(
        f"results: {len(outcomes)}; all in the canonical contract: {canonical}; "
        f"workflow statuses: {dict(statuses)}; failed or unfinished: {failed}"
    )
    # A v4 document that waited for review was kept there (its reviewer decided its label);
    # every other v4 document must have run again on the baseline.
    on_v4 = [o for o in outcomes if o.result.model_version == "v4"]
    on_bad = sorted({o.document_id for o in on_v4 if o.outcome.value != "reviewed"})
    console.print(
        f"documents whose current result is an unreviewed v4 answer: {len(on_bad)}; "
        f"v4 documents a reviewer decided: {len(on_v4) - len(on_bad)}"
    )
    ok = (
        canonical
        and failed == 0
        and not on_bad
        and len(outcomes) == sum(len(b.docs) for b in batches)
    )
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED[/]")
    return 0 if ok else 1
