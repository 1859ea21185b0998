"""Activities: all model and database I/O of the pipeline.

Activity versioning: ``classify_document_v1`` and ``classify_document_v2`` are registered side by
side under distinct names, one per raw output schema version. Each calls its version's endpoint and
returns the canonical contract, so normalization happens before anything leaves the activity and
no raw model format ever reaches workflow history or downstream code.

Errors become ``ApplicationError`` with ``type`` set to the modelbaton error class name, so the
workflow's retry policy can list the permanent ones and operators see the same names.
"""

from __future__ import annotations

import asyncio

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from modelbaton.contracts import NormalizedClassificationResult, normalize
from modelbaton.errors import ModelBatonError, ModelEndpointError, ModelOutputError
from modelbaton.models.catalog import PipelineSection
from modelbaton.models.client import call_model_endpoint
from modelbaton.pipeline.messages import (
    CLASSIFY_V1,
    CLASSIFY_V2,
    PROCESS_RESULT,
    ClassifyActivityInput,
    Outcome,
    ProcessInput,
    ProcessOutput,
)
from modelbaton.pipeline.store import ResultsStore

#: Destination for documents whose review timed out.
ESCALATION_ROUTE = "review_escalations"


def to_application_error(exc: ModelBatonError) -> ApplicationError:
    """Map a modelbaton error to Temporal's error, deciding retryability once, here."""
    retryable = isinstance(exc, ModelEndpointError) and exc.retryable
    details: dict[str, object] = {"error": type(exc).__name__}
    if isinstance(exc, ModelOutputError):
        details |= {"field": exc.field, "schema_version": exc.schema_version}
    return ApplicationError(str(exc), details, type=type(exc).__name__, non_retryable=not retryable)


class PipelineActivities:
    """Holds the shared HTTP client, results store and routing configuration of one worker."""

    def __init__(
        self, store: ResultsStore, pipeline: PipelineSection, http: httpx.AsyncClient
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._http = http

    async def _classify(
        self, inp: ClassifyActivityInput, expected_schema: int
    ) -> NormalizedClassificationResult:
        if inp.config.output_schema_version != expected_schema:
            # A misrouted config is a deploy mistake; retrying cannot fix it.
            raise ApplicationError(
                f"{activity.info().activity_type} reads output schema v{expected_schema}, but "
                f"model {inp.config.version} declares v{inp.config.output_schema_version}",
                type="ConfigError",
                non_retryable=True,
            )
        try:
            raw = await call_model_endpoint(inp.config, inp.text, client=self._http)
            return normalize(raw, inp.config)
        except ModelBatonError as exc:
            activity.logger.warning(
                "classify %s with %s failed: %s", inp.document_id, inp.config.version, exc
            )
            raise to_application_error(exc) from None

    @activity.defn(name=CLASSIFY_V1)
    async def classify_document_v1(
        self, inp: ClassifyActivityInput
    ) -> NormalizedClassificationResult:
        """Classify with a model whose raw output is schema v1 (scores keyed by class)."""
        return await self._classify(inp, 1)

    @activity.defn(name=CLASSIFY_V2)
    async def classify_document_v2(
        self, inp: ClassifyActivityInput
    ) -> NormalizedClassificationResult:
        """Classify with a model whose raw output is schema v2 (positional scores, class order)."""
        return await self._classify(inp, 2)

    @activity.defn(name=PROCESS_RESULT)
    async def process_classification_result(self, inp: ProcessInput) -> ProcessOutput:
        """Route the canonical result by its final label and store it, at most once per document."""
        destination = (
            ESCALATION_ROUTE
            if inp.outcome is Outcome.ESCALATED
            else self._pipeline.route_for(inp.final_label)
        )
        row = {
            "document_id": inp.document_id,
            "workflow_id": inp.workflow_id,
            "run_id": inp.run_id,
            "branch": inp.branch,
            "model_version": inp.result.model_version,
            "schema_version": inp.result.schema_version,
            "model_label": inp.result.label,
            "final_label": inp.final_label,
            "confidence": inp.result.confidence,
            "outcome": inp.outcome.value,
            "reviewer": inp.reviewer,
            "destination": destination,
            "scores_by_class": dict(inp.result.scores_by_class),
        }
        # SQLAlchemy is synchronous: keep it off the event loop that serves other activities.
        written = await asyncio.to_thread(self._store.write, row)
        return ProcessOutput(
            record_id=written.record_id, destination=written.destination, created=written.created
        )

    def all(self) -> list[object]:
        """Every activity of this worker, for ``Worker(activities=...)``."""
        return [
            self.classify_document_v1,
            self.classify_document_v2,
            self.process_classification_result,
        ]
