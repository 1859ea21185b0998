"""Acts 2 to 4, the article's code upgrade: a batch on the pre-patch code, the deploy of the
current release while documents wait at review, and a batch assigned to the primary's pool."""

from __future__ import annotations

from modelbaton.contracts import DeploymentStrategy
from modelbaton.demo.documents import (
    DEMO_QUEUE,
    Batch,
    Demo,
    make_batch,
    poll_until,
    settle,
    submit,
    submit_legacy,
)
from modelbaton.pipeline import WorkflowState, source_of
from modelbaton.stack import DEFAULT_RELEASE, restart_workers

AT_REVIEW = WorkflowState.AWAITING_REVIEW.value


async def before_the_patch(demo: Demo, before: Batch) -> int:
    """Act 2: ``before`` classified by v1 on the pre-patch code; return how many wait."""
    demo.console.rule("[bold]2. batch 1: model v1 on the pre-patch code")
    await submit_legacy(demo, before, DeploymentStrategy(primary_version=demo.catalog.get("v1")))
    states = await settle(before)
    waiting = sum(s == AT_REVIEW for s in states.values())
    demo.console.print(f"{len(before.docs)} submitted; {waiting} wait for human review")
    return waiting


def deploy(demo: Demo) -> None:
    """Act 3: restart the worker on the current release; in-flight workflows keep going."""
    demo.console.rule("[bold]3. deploy: restart the worker on the CURRENT release")
    restart_workers(demo.home, release=DEFAULT_RELEASE)
    demo.console.print(
        f"worker now runs {source_of(DEFAULT_RELEASE)}; in-flight workflows "
        f"keep going; model pools polling: {', '.join(demo.stack.pools)}"
    )


async def after_the_patch(demo: Demo, waiting_before: int) -> Batch:
    """Act 4: a batch assigned by the rollout plan to the primary, on its worker pool."""
    demo.console.rule(f"[bold]4. batch 2: model {demo.catalog.pipeline.primary} on its worker pool")
    after = make_batch("after", demo.per_batch, seed=202)
    await submit(demo, after, await demo.rollouts.plan())
    states = await settle(after)
    waiting = sum(s == AT_REVIEW for s in states.values())
    demo.console.print(f"{len(after.docs)} submitted; {waiting} wait for human review")

    async def in_flight() -> dict[str, int] | None:
        counts = {
            version: (
                await demo.client.count_workflows(
                    f"ModelVersion = '{version}' AND ExecutionStatus = 'Running' "
                    f"AND TaskQueue = '{DEMO_QUEUE}'"
                )
            ).count
            for version in demo.catalog.versions
        }
        # Visibility is eventually consistent: wait until it shows what the workflows said, the
        # documents at review still running and every other one closed.
        return counts if sum(counts.values()) == waiting_before + waiting else None

    counts = await poll_until(in_flight, "visibility count matching the documents at review", 60)
    demo.console.print(f"in flight per model version (Temporal visibility): {counts}")
    return after
