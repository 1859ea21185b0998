"""Activities: all model and database I/O of the pipeline.

Activity versioning: ``classify_document_v1`` and ``classify_document_v2`` are registered side by
side under distinct names, one per raw output schema version. Each resolves the model's endpoint
from the catalog when it runs (histories record only which model), calls it and returns the
canonical contract, so normalization happens before anything leaves the activity and no raw model
format ever reaches workflow history or downstream code.

A model version's pool worker registers only the classify activity of its version on its own task
queue (:class:`ClassifyActivities` with ``only_version``); the workflow worker registers
:class:`PipelineActivities`, whose classify activities serve only histories recorded before the
assignment patch (they scheduled classify on the workflow's own queue).

Errors become ``ApplicationError`` with ``type`` set to the modelbaton error class name, so the
workflow's retry policy can list the permanent ones and operators see the same names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import MethodType
from typing import Protocol

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from modelbaton import metrics
from modelbaton.contracts import ModelVersionConfig, NormalizedClassificationResult, normalize
from modelbaton.errors import (
    ConfigError,
    ModelBatonError,
    ModelEndpointError,
    ModelOutputError,
    SupersededRunError,
)
from modelbaton.models.client import call_model_endpoint
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.messages import (
    CLASSIFY_V1,
    CLASSIFY_V2,
    PROCESS_RESULT,
    RECORD_SHADOW,
    SHADOW_CLASSIFY,
    ArmAnswer,
    ClassifyActivityInput,
    Outcome,
    ProcessInput,
    ProcessOutput,
    ShadowRecordInput,
)
from modelbaton.pipeline.store import ResultsStore

#: Destination for documents whose review timed out.
ESCALATION_ROUTE = "review_escalations"


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


async def _run_started_at(workflow_id: str, run_id: str) -> datetime | None:
    """When the writing run started (the store refuses a stale run's write by it); None when
    it cannot be told (no client outside a worker, or the run is not found)."""
    try:
        described = (
            await activity.client().get_workflow_handle(workflow_id, run_id=run_id).describe()
        )
    except (RuntimeError, RPCError):
        return None
    return described.start_time


def to_application_error(exc: ModelBatonError) -> ApplicationError:
    """Map a modelbaton error to Temporal's error, deciding retryability once, here."""
    retryable = isinstance(exc, ModelEndpointError) and exc.retryable
    details: dict[str, object] = {"error": type(exc).__name__}
    if isinstance(exc, ModelOutputError):
        details |= {"field": exc.field, "schema_version": exc.schema_version}
    return ApplicationError(str(exc), details, type=type(exc).__name__, non_retryable=not retryable)


class ClassifyActivities:
    """The classify activities of one worker: a pool (``only_version``) or the workflow worker."""

    def __init__(
        self, catalog: CatalogSource, http: httpx.AsyncClient, *, only_version: str | None = None
    ) -> None:
        self._catalog = catalog
        self._http = http
        self._only_version = only_version

    def _resolve(self, inp: ClassifyActivityInput, expected_schema: int) -> ModelVersionConfig:
        """The catalog configuration of the model ``inp`` names, refused when misrouted."""
        model_id, version, schema = inp.identity()
        if self._only_version is not None and version != self._only_version:
            raise ConfigError(
                f"the pool of {self._only_version} received document {inp.document_id} for "
                f"{version}; its task queue {activity.info().task_queue} is misrouted"
            )
        config = self._catalog.resolve(model_id, version)
        if schema != expected_schema or config.output_schema_version != expected_schema:
            # A misrouted assignment or an edited catalog is a deploy mistake; retrying
            # cannot fix it.
            raise ConfigError(
                f"{activity.info().activity_type} reads output schema v{expected_schema}, but "
                f"model {version} is assigned v{schema} and the catalog declares "
                f"v{config.output_schema_version}"
            )
        return config

    async def _classify(
        self, inp: ClassifyActivityInput, expected_schema: int
    ) -> NormalizedClassificationResult:
        try:
            config = self._resolve(inp, expected_schema)
        except ModelBatonError as exc:
            raise to_application_error(exc) from None
        version = config.version
        started = time.monotonic()
        try:
            raw = await call_model_endpoint(config, inp.text, client=self._http)
            result = normalize(raw, config)
            metrics.classify_done(version, "primary", _ms_since(started), None)
            return result
        except ModelBatonError as exc:
            metrics.classify_done(version, "primary", _ms_since(started), type(exc).__name__)
            activity.logger.warning("classify %s with %s failed: %s", inp.document_id, version, exc)
            error = to_application_error(exc)
            waited = (datetime.now(UTC) - activity.info().scheduled_time).total_seconds()
            if not error.non_retryable and waited > config.retry_window_seconds:
                # The retry budget is a catalog setting read now, not a count frozen in history.
                raise ApplicationError(
                    f"{exc} (gave up after retrying for {waited:.0f} s; the catalog's "
                    f"retry_window_seconds for {version} is {config.retry_window_seconds:.0f})",
                    *error.details,
                    type=error.type,
                    non_retryable=True,
                ) from None
            raise error from None

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

    @activity.defn(name=SHADOW_CLASSIFY)
    async def shadow_classify(self, inp: ClassifyActivityInput) -> ArmAnswer:
        """Classify for comparison only: a permanent error (malformed output, a schema or
        normalizer error, a misconfiguration) is returned in the answer, not raised; a transient
        one is raised, so it is retried within the shadow budget the workflow set."""
        _, version, schema = inp.identity()
        started = time.monotonic()
        try:
            config = self._resolve(inp, schema)
            raw = await call_model_endpoint(config, inp.text, client=self._http)
            result = normalize(raw, config)
        except ModelEndpointError as exc:
            metrics.classify_done(version, "shadow", _ms_since(started), type(exc).__name__)
            if not exc.retryable:
                return ArmAnswer(
                    model_version=version, error_type=type(exc).__name__, error=str(exc)
                )
            raise to_application_error(exc) from None
        except ModelBatonError as exc:
            metrics.classify_done(version, "shadow", _ms_since(started), type(exc).__name__)
            return ArmAnswer(model_version=version, error_type=type(exc).__name__, error=str(exc))
        metrics.classify_done(version, "shadow", _ms_since(started), None)
        return ArmAnswer(model_version=version, result=result)

    def for_schema(self, schema: int) -> object:
        """The classify activity that reads output schema ``schema``, bound to this worker."""
        method = CLASSIFY_BY_SCHEMA.get(schema)
        if method is None:
            raise ConfigError(f"no classify activity reads output schema v{schema}")
        return MethodType(method, self)

    def all(self) -> list[object]:
        return [self.classify_document_v1, self.classify_document_v2]

    def for_pool(self, schema: int) -> list[object]:
        """A model version's pool: its schema's classify activity and the shadow call."""
        return [self.for_schema(schema), self.shadow_classify]


ClassifyMethod = Callable[
    [ClassifyActivities, ClassifyActivityInput], Awaitable[NormalizedClassificationResult]
]
#: The classify activity that reads each raw output schema version, the one map of it: the
#: workflow schedules these by typed reference, the pools register them, and a catalog model whose
#: output schema is missing here has no activity to run it (``baton schema check`` and the
#: controller's preflight say so).
CLASSIFY_BY_SCHEMA: dict[int, ClassifyMethod] = {
    1: ClassifyActivities.classify_document_v1,
    2: ClassifyActivities.classify_document_v2,
}


class ShadowRecorder(Protocol):
    """Where ``record_shadow_comparison`` hands a shadowed document's answers (the shadow room's
    :class:`modelbaton.shadow.recorder.ComparisonRecorder`, wired in by ``modelbaton.app``)."""

    async def record(self, inp: ShadowRecordInput) -> None: ...


class PipelineActivities:
    """The workflow worker's activities: the downstream write, the shadow comparison's record,
    and classify for old histories."""

    def __init__(
        self,
        store: ResultsStore,
        catalog: CatalogSource,
        http: httpx.AsyncClient,
        *,
        shadows: ShadowRecorder,
    ) -> None:
        self._store = store
        self._shadows = shadows
        self._catalog = catalog
        self.classify = ClassifyActivities(catalog, http)

    @activity.defn(name=PROCESS_RESULT)
    async def process_classification_result(self, inp: ProcessInput) -> ProcessOutput:
        """Route the canonical result by its final label and store it as the document's current
        record (a re-run supersedes the previous run's record; a retry finds its own)."""
        destination = (
            ESCALATION_ROUTE
            if inp.outcome is Outcome.ESCALATED
            else self._catalog.current().pipeline.route_for(inp.final_label)
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
            "arm": inp.arm,
            "rollout_id": inp.rollout_id,
            "run_started_at": await _run_started_at(inp.workflow_id, inp.run_id),
        }
        # SQLAlchemy is synchronous: keep it off the event loop that serves other activities.
        try:
            written = await asyncio.to_thread(self._store.write, row)
        except SupersededRunError as exc:  # a terminated run's late write: the newer run stands
            raise to_application_error(exc) from exc
        if written.created:  # a retry that finds its own record is not a second document
            metrics.document_written(inp.result.model_version, inp.arm, inp.outcome.value)
        return ProcessOutput(
            record_id=written.record_id, destination=written.destination, created=written.created
        )

    @activity.defn(name=RECORD_SHADOW)
    async def record_shadow_comparison(self, inp: ShadowRecordInput) -> None:
        """Compare the arms' answers and store the row of (rollout, document)."""
        await self._shadows.record(inp)

    def all(self) -> list[object]:
        """Every activity of the workflow worker, for ``Worker(activities=...)``."""
        return [
            *self.classify.all(),
            self.process_classification_result,
            self.record_shadow_comparison,
        ]
