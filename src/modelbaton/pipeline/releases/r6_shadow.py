"""Release 6, shadow: a sampled document's candidate answers beside the primary, for comparison.

``workflow.patched(PATCH_SHADOW)`` guards the new commands, and only inputs that carry a shadow
assignment reach them, so every history of the earlier releases replays unchanged.

How the shadow stays off the primary path:

- The shadow calls (the candidate on its pool, and on a sample the baseline a second time, for
  the noise baseline) are scheduled in the same workflow task as the primary classify and never
  awaited by it. The review wait and the downstream write depend only on the primary answer.
- A shadow call never raises into the workflow: malformed output and schema or normalizer errors
  come back as answers; transient errors are retried by the server only within the rollout's
  shadow budget (a schedule-to-close timeout), after which the timeout is the answer.
- The comparison is recorded (its own activity and table) as soon as both arms have answered,
  and again with the reviewed label if a human reviews the document.
- A workflow whose shadow is still running when it would complete waits for it after the
  downstream write. The wait is bounded by the shadow budget counted from the classify step, so
  no comparison is lost and no document is held longer than that budget. A failing comparison
  write is logged and never fails the document.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from modelbaton.pipeline.releases._base import PROCESS_RETRY, DocumentClassificationBase

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import NormalizedClassificationResult
    from modelbaton.contracts.config import CLASSIFY_ATTEMPT_SECONDS
    from modelbaton.contracts.rollout import ModelAssignment, ShadowAssignment
    from modelbaton.pipeline.activities import ClassifyActivities, PipelineActivities
    from modelbaton.pipeline.messages import (
        CLASSIFY_V1,
        CLASSIFY_V2,
        WORKFLOW_TYPE,
        ArmAnswer,
        ClassificationOutcome,
        ClassifyActivityInput,
        ClassifyDocumentInput,
        Outcome,
        ShadowRecordInput,
    )
    from modelbaton.pipeline.patches import (
        PATCH_CLASSIFY_V2,
        PATCH_MODEL_ASSIGNMENT,
        PATCH_SHADOW,
    )

#: Shadow calls retry transient failures quickly; the budget (schedule-to-close) bounds them.
SHADOW_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)
#: How long the comparison write may keep retrying (a database outage) before it is given up.
RECORD_BUDGET = timedelta(minutes=10)


#: New (assigned) workflows classify with a model of either raw output schema.
SERVES_SCHEMAS: frozenset[int] = frozenset({1, 2})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Assigned code plus the shadow comparison of sampled documents."""

    def __init__(self) -> None:
        super().__init__()
        self._primary: ArmAnswer | None = None
        self._shadow_task: asyncio.Task[None] | None = None
        self._compared = False

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        if inp.assignment is not None and workflow.patched(PATCH_MODEL_ASSIGNMENT):
            if inp.shadow is not None and workflow.patched(PATCH_SHADOW):
                return await self._classify_shadowed(inp, inp.assignment, inp.shadow)
            return await self._classify_assigned(inp, inp.assignment)
        config = self._legacy_config(inp)
        if workflow.patched(PATCH_CLASSIFY_V2):
            return "v2", await self._call_classifier(inp, CLASSIFY_V2, config)
        return "v1", await self._call_classifier(inp, CLASSIFY_V1, config)

    async def _classify_shadowed(
        self, inp: ClassifyDocumentInput, assignment: ModelAssignment, shadow: ShadowAssignment
    ) -> tuple[str, NormalizedClassificationResult]:
        started = workflow.now()
        # Scheduled in this workflow task, beside the primary call, and never awaited by it.
        targets = [shadow.candidate] + ([shadow.noise] if shadow.noise else [])
        calls = [(_start_shadow_call(inp, t, shadow.budget_seconds), t) for t in targets]
        self._shadow_task = asyncio.create_task(self._compare(inp, shadow, calls, started))
        try:
            branch, result = await self._classify_assigned(inp, assignment)
        except (ActivityError, ApplicationError) as exc:
            # The document fails as it would unshadowed; its comparison still records what each
            # arm answered (within the shadow budget) before the failure surfaces.
            self._primary = _failed_answer(assignment.model_version, exc, started)
            await self._shadow_task
            raise
        self._primary = ArmAnswer(
            model_version=assignment.model_version, result=result, latency_ms=_ms_since(started)
        )
        return branch, result

    async def _compare(
        self,
        inp: ClassifyDocumentInput,
        shadow: ShadowAssignment,
        calls: list[tuple[workflow.ActivityHandle[ArmAnswer], ModelAssignment]],
        started: datetime,
    ) -> None:
        """Record the comparison once every arm answered, and again once a human reviewed."""
        answers = await asyncio.gather(*(_answer(h, t, started) for h, t in calls))
        await workflow.wait_condition(lambda: self._primary is not None)
        assert self._primary is not None
        info = workflow.info()
        record = ShadowRecordInput(
            rollout_id=shadow.rollout_id,
            document_id=inp.document_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            baseline=self._primary,
            candidate=answers[0],
            noise=answers[1] if len(answers) > 1 else None,
        )
        await _record(record)
        self._compared = True
        if self._primary.result is None:
            return
        await workflow.wait_condition(lambda: self._final is not None)
        assert self._final is not None
        label, outcome = self._final
        if outcome is Outcome.REVIEWED:
            await _record(record.model_copy(update={"reviewed_label": label}))

    async def _after_processed(self) -> None:
        if self._shadow_task is not None:
            await self._shadow_task

    def _safe_point(self) -> bool:
        # A safe-point upgrade at review waits for the comparison to be recorded first (the
        # reviewed label is then not added to it: the new run has no shadow of its own).
        return self._shadow_task is None or self._compared or self._shadow_task.done()

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)


def _ms_since(started: datetime) -> float:
    return (workflow.now() - started).total_seconds() * 1000.0


def _start_shadow_call(
    inp: ClassifyDocumentInput, target: ModelAssignment, budget_seconds: float
) -> workflow.ActivityHandle[ArmAnswer]:
    return workflow.start_activity_method(
        ClassifyActivities.shadow_classify,
        ClassifyActivityInput(
            document_id=inp.document_id,
            text=inp.text,
            model_id=target.model_id,
            model_version=target.model_version,
            output_schema_version=target.output_schema_version,
        ),
        task_queue=target.task_queue,
        schedule_to_close_timeout=timedelta(seconds=budget_seconds),
        start_to_close_timeout=timedelta(seconds=min(budget_seconds, CLASSIFY_ATTEMPT_SECONDS)),
        retry_policy=SHADOW_RETRY,
    )


async def _answer(
    handle: workflow.ActivityHandle[ArmAnswer], target: ModelAssignment, started: datetime
) -> ArmAnswer:
    """The shadow call's answer with its latency; a timeout or failure becomes the answer."""
    try:
        answer = await handle
    except ActivityError as exc:
        return _failed_answer(target.model_version, exc, started)
    return answer.model_copy(update={"latency_ms": _ms_since(started)})


def _failed_answer(version: str, exc: BaseException, started: datetime) -> ArmAnswer:
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    if isinstance(cause, TimeoutError):
        last = f" (last error: {_message(cause.cause)})" if cause.cause else ""
        return ArmAnswer(
            model_version=version,
            error_type="Timeout",
            error=f"no answer within the shadow budget{last}",
            latency_ms=_ms_since(started),
        )
    error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    return ArmAnswer(
        model_version=version,
        error_type=error_type or type(cause).__name__,
        error=_message(cause),
        latency_ms=_ms_since(started),
    )


def _message(exc: BaseException | None) -> str:
    return str(getattr(exc, "message", None) or exc)


async def _record(record: ShadowRecordInput) -> None:
    """Store the comparison; a write that keeps failing is logged, never fails the document."""
    try:
        await workflow.execute_activity_method(
            PipelineActivities.record_shadow_comparison,
            record,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=RECORD_BUDGET,
            retry_policy=PROCESS_RETRY,
        )
    except ActivityError as exc:
        workflow.logger.error(
            "shadow comparison of %s in rollout %s was not recorded: %s",
            record.document_id,
            record.rollout_id,
            exc.cause or exc,
        )
