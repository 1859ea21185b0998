"""Variants of the bare workflow (``_bare.py``), each adding one trait of the pipeline's shape.

Used by ``shape_costs.py`` to price each trait alone against the bare floor. Like ``_bare``, this
module is found by the sandbox as a top-level module on ``sys.path``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from _bare import bare_first, bare_second
    from modelbaton.contracts import NormalizedClassificationResult
    from modelbaton.pipeline import search_attributes as sa
    from modelbaton.pipeline.messages import (
        CLASSIFY_V2,
        PROCESS_RESULT,
        ClassificationOutcome,
        ClassifyActivityInput,
        ClassifyDocumentInput,
        Outcome,
        ProcessInput,
        ProcessOutput,
        ReviewDecision,
        ReviewReceipt,
        WorkflowState,
        WorkflowStatusView,
    )

_TIMEOUT = timedelta(seconds=30)


async def _two_bare(value: str) -> str:
    first = await workflow.execute_activity(bare_first, value, start_to_close_timeout=_TIMEOUT)
    return await workflow.execute_activity(bare_second, first, start_to_close_timeout=_TIMEOUT)


@workflow.defn(name="ShapeUpsert")
class UpsertWorkflow:
    """Bare plus the two search-attribute upserts the pipeline makes after classifying."""

    @workflow.run
    async def run(self, value: str) -> str:
        first = await workflow.execute_activity(bare_first, value, start_to_close_timeout=_TIMEOUT)
        workflow.upsert_search_attributes(
            [sa.MODEL_VERSION.value_set("v2"), sa.OUTPUT_SCHEMA_VERSION.value_set(2)]
        )
        return await workflow.execute_activity(bare_second, first, start_to_close_timeout=_TIMEOUT)


@workflow.defn(name="ShapePatched")
class PatchedWorkflow:
    """Bare plus one ``workflow.patched`` marker before the first activity."""

    @workflow.run
    async def run(self, value: str) -> str:
        if workflow.patched("SHAPE_PATCH"):
            return await _two_bare(value)
        return await _two_bare(value + "-old")


@workflow.defn(name="ShapeLogger")
class LoggerWorkflow:
    """Bare plus two ``workflow.logger`` calls."""

    @workflow.run
    async def run(self, value: str) -> str:
        workflow.logger.info("start %s", value)
        out = await _two_bare(value)
        workflow.logger.info("done %s", value)
        return out


class _Handlers:
    """A query and a validated update, as the pipeline's base class has them."""

    def __init__(self) -> None:
        self._state = WorkflowState.CLASSIFYING
        self._review: ReviewDecision | None = None

    @workflow.update
    async def submit_review(self, decision: ReviewDecision) -> ReviewReceipt:
        self._review = decision
        return ReviewReceipt(document_id="x", accepted_label=decision.label, changed=False)

    @submit_review.validator
    def _validate(self, decision: ReviewDecision) -> None:
        if self._review is not None:
            raise ValueError("already reviewed")

    @workflow.query
    def status(self) -> WorkflowStatusView:
        return WorkflowStatusView(document_id="x", state=self._state, review=self._review)


@workflow.defn(name="ShapeHandlers")
class HandlersWorkflow(_Handlers):
    """Bare plus the handlers on the class, neither ever called."""

    @workflow.run
    async def run(self, value: str) -> str:
        out = await _two_bare(value)
        self._state = WorkflowState.DONE
        return out


async def _two_models(inp: ClassifyDocumentInput, *, upsert: bool = False) -> ClassificationOutcome:
    config = inp.deployment.primary_version
    result: NormalizedClassificationResult = await workflow.execute_activity(
        CLASSIFY_V2,
        ClassifyActivityInput(document_id=inp.document_id, text=inp.text, config=config),
        result_type=NormalizedClassificationResult,
        start_to_close_timeout=_TIMEOUT,
    )
    if upsert:
        workflow.upsert_search_attributes(
            [
                sa.MODEL_VERSION.value_set(result.model_version),
                sa.OUTPUT_SCHEMA_VERSION.value_set(result.schema_version),
            ]
        )
    info = workflow.info()
    processed = await workflow.execute_activity(
        PROCESS_RESULT,
        ProcessInput(
            document_id=inp.document_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            branch="v2",
            result=result,
            final_label=result.label,
            outcome=Outcome.AUTO,
        ),
        result_type=ProcessOutput,
        start_to_close_timeout=_TIMEOUT,
    )
    return ClassificationOutcome(
        document_id=inp.document_id,
        branch="v2",
        result=result,
        final_label=result.label,
        outcome=Outcome.AUTO,
        destination=processed.destination,
        record_id=processed.record_id,
    )


@workflow.defn(name="ShapeModels")
class ModelsWorkflow:
    """Bare with the pipeline's Pydantic messages in and out (run with the Pydantic converter)."""

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await _two_models(inp)


@workflow.defn(name="ShapeComposed")
class ComposedWorkflow(_Handlers):
    """Every trait at once, in this small module: the pipeline's shape minus its module tree."""

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        if not workflow.patched("SHAPE_PATCH"):
            raise RuntimeError("unreachable in a fresh history")
        out = await _two_models(inp, upsert=True)
        self._state = WorkflowState.DONE
        return out
