"""The model-call helper for ANY workflow: the assignment recorded in the workflow's input decides
which activity runs (the one reading the assigned model's output schema) and on which queue (the
assigned model version's pool); a shadow call may run beside it, never awaited by the primary.

Workflow code, so only deterministic Temporal APIs are used here; activities are scheduled from
their definitions (``@activity.defn`` functions or methods), never by a string name::

    ROUTE = ModelRoute({1: InvoiceActivities.extract_v1, 2: InvoiceActivities.extract_v2})

    call = ROUTE.start(inp.assignment, inp.document, shadow=inp.shadow)
    invoice = await call                     # only the primary answer is awaited
    ...
    answers = await call.shadow_answers()    # before the workflow completes

The assignment: the one passed to :meth:`ModelRoute.start` (recorded in the input, today's way)
wins; without one (``None``), the start's header written by ``modelbaton.AssignmentPlugin``, else
the plan resolved once per run through the plugin's local activity (see
:mod:`modelbaton.pipeline.start_assignment`). Both are recorded in history, so replay repeats them.

Each activity receives two arguments: the :class:`ModelTarget` (identity only: model id, version,
output schema version) and the user's payload, and returns the canonical result, normalized
inside the activity (see :class:`~modelbaton.contracts.schemas.ContractRegistry`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from modelbaton.contracts.rollout import ModelAssignment, ShadowAssignment
from modelbaton.pipeline import start_assignment

C = TypeVar("C")

#: Default bound of one attempt of the primary call.
DEFAULT_ATTEMPT = timedelta(seconds=60)
#: Shadow calls retry transient failures quickly; the shadow budget (schedule-to-close) bounds them.
SHADOW_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)


class ModelTarget(BaseModel):
    """What a model activity is told about the model it calls: identity, never configuration
    (the activity resolves endpoints and timeouts when it runs)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_id: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    output_schema_version: int = Field(ge=1)

    @classmethod
    def of(cls, assignment: ModelAssignment) -> ModelTarget:
        return cls(
            model_id=assignment.model_id,
            model_version=assignment.model_version,
            output_schema_version=assignment.output_schema_version,
        )


@dataclass(frozen=True)
class ShadowAnswer(Generic[C]):
    """One shadow call's answer: the canonical result, or why there is none (a timeout within
    the shadow budget, a failure). It never raises into the workflow."""

    target: ModelAssignment
    result: C | None = None
    error_type: str | None = None
    error: str | None = None
    #: From the workflow scheduling the calls to this answer (or its failure) reaching it, by
    #: workflow time: measured the same way as :attr:`ModelCall.latency_ms`.
    latency_ms: float | None = None

    @property
    def answered(self) -> bool:
        return self.result is not None


class ModelCall(Generic[C]):
    """A scheduled model call: await it for the primary's canonical result."""

    def __init__(
        self,
        primary: asyncio.Task[C],
        shadow: asyncio.Task[list[ShadowAnswer[C]]] | None,
        latency: Callable[[], float | None] | None = None,
    ) -> None:
        self._primary = primary
        self._shadow = shadow
        self._latency = latency

    def __await__(self) -> Generator[Any, None, C]:
        return self._primary.__await__()

    @property
    def latency_ms(self) -> float | None:
        """Once the primary answered: from the workflow scheduling the calls to the answer
        reaching it, by workflow time (deterministic, so the same on replay; its resolution is
        the workflow task's). Shadow answers carry theirs, measured the same way."""
        return self._latency() if self._latency is not None else None

    @property
    def shadowed(self) -> bool:
        """Whether shadow calls were scheduled (for a call still resolving its assignment through
        the fallback: whether they may be; :meth:`shadow_answers` is then empty if not)."""
        return self._shadow is not None

    async def shadow_answers(self) -> list[ShadowAnswer[C]]:
        """The shadow answers (candidate first, then the noise baseline if sampled); empty when
        the document is not shadowed. Await this before the workflow completes, or the shadow
        activities are abandoned with it."""
        if self._shadow is None:
            return []
        return await self._shadow


class ModelRoute(Generic[C]):
    """Which activity reads which output schema version, and how to call it."""

    def __init__(
        self,
        activities: Mapping[int, Callable[..., Awaitable[C]]],
        *,
        start_to_close_timeout: timedelta = DEFAULT_ATTEMPT,
        retry_policy: RetryPolicy | None = None,
        shadow_retry_policy: RetryPolicy = SHADOW_RETRY,
    ) -> None:
        if not activities:
            raise ValueError("a ModelRoute needs at least one output schema's activity")
        self._activities = dict(activities)
        self._timeout = start_to_close_timeout
        self._retry = retry_policy
        self._shadow_retry = shadow_retry_policy

    @property
    def schema_versions(self) -> frozenset[int]:
        """The output schema versions this route can call."""
        return frozenset(self._activities)

    def activity_for(self, schema_version: int) -> Callable[..., Awaitable[C]]:
        try:
            return self._activities[schema_version]
        except KeyError:
            known = ", ".join(str(v) for v in sorted(self._activities))
            # Failing the workflow, not its task: a misrouted assignment cannot heal on retry.
            raise ApplicationError(
                f"no activity reads output schema v{schema_version} (this workflow calls: "
                f"{known}); assign a model whose schema it serves",
                type="UnknownSchemaVersionError",
                non_retryable=True,
            ) from None

    def _schedule(
        self,
        target: ModelAssignment,
        payload: Any,
        *,
        budget: timedelta | None,
        retry_policy: RetryPolicy | None,
    ) -> workflow.ActivityHandle[C]:
        attempt = min(self._timeout, budget) if budget is not None else self._timeout
        handle: workflow.ActivityHandle[C] = workflow.start_activity(
            self.activity_for(target.output_schema_version),
            args=[ModelTarget.of(target), payload],
            task_queue=target.task_queue,
            start_to_close_timeout=attempt,
            schedule_to_close_timeout=budget,
            retry_policy=retry_policy,
        )
        return handle

    def start(
        self,
        assignment: ModelAssignment | None,
        payload: Any,
        *,
        shadow: ShadowAssignment | None = None,
    ) -> ModelCall[C]:
        """Schedule the primary call (and the shadow calls, in the same workflow task).

        With ``assignment`` None, the run's start assignment is used (and its shadow, not
        ``shadow``): the header's at once, or, the first time without a header, after the
        fallback's local activity has resolved it."""
        if assignment is None:
            state = start_assignment.current()
            known = state.known if state is not None else None
            if known is None:
                return self._deferred(payload)
            assignment, shadow = known.model, known.shadow
        started = workflow.now()
        handle = self._schedule(assignment, payload, budget=None, retry_policy=self._retry)
        answered: list[float] = []

        async def primary() -> C:
            result = await handle
            answered.append(_ms_since(started))
            return result

        task: asyncio.Task[list[ShadowAnswer[C]]] | None = None
        if shadow is not None:
            budget = timedelta(seconds=shadow.budget_seconds)
            targets = [shadow.candidate] + ([shadow.noise] if shadow.noise else [])
            calls: list[Awaitable[ShadowAnswer[C]]] = []
            for t in targets:
                if t.output_schema_version not in self._activities:
                    # A shadow never fails the document: an unread schema is its answer.
                    calls.append(_unread(t, sorted(self._activities)))
                    continue
                shadow_handle = self._schedule(
                    t, payload, budget=budget, retry_policy=self._shadow_retry
                )
                calls.append(_answer(shadow_handle, t, started))
            task = asyncio.create_task(_gather_answers(calls))
        return ModelCall(
            asyncio.create_task(primary()), task, lambda: answered[0] if answered else None
        )

    def _deferred(self, payload: Any) -> ModelCall[C]:
        """A call whose assignment the fallback resolves first (one local activity per run)."""

        async def started() -> ModelCall[C]:
            assigned = await start_assignment.run_assignment()
            return self.start(assigned.model, payload, shadow=assigned.shadow)

        inner = asyncio.create_task(started())

        async def primary() -> C:
            return await (await inner)

        async def shadows() -> list[ShadowAnswer[C]]:
            try:
                call = await inner
            except Exception:
                return []  # the primary reports why the assignment could not be had
            return await call.shadow_answers()

        def latency() -> float | None:
            return inner.result().latency_ms if inner.done() and not inner.exception() else None

        return ModelCall(asyncio.create_task(primary()), asyncio.create_task(shadows()), latency)

    async def call(self, assignment: ModelAssignment | None, payload: Any) -> C:
        """The primary call alone: its canonical result."""
        return await self.start(assignment, payload)


async def _gather_answers(calls: list[Awaitable[ShadowAnswer[C]]]) -> list[ShadowAnswer[C]]:
    return list(await asyncio.gather(*calls))


async def _unread(target: ModelAssignment, known: list[int]) -> ShadowAnswer[C]:
    return ShadowAnswer(
        target=target,
        error_type="UnknownSchemaVersionError",
        error=f"no activity reads output schema v{target.output_schema_version} (this workflow "
        f"calls: {', '.join(str(v) for v in known)})",
    )


def _ms_since(started: datetime) -> float:
    return (workflow.now() - started).total_seconds() * 1000.0


async def _answer(
    handle: workflow.ActivityHandle[C], target: ModelAssignment, started: datetime
) -> ShadowAnswer[C]:
    try:
        result = await handle
        return ShadowAnswer(target=target, result=result, latency_ms=_ms_since(started))
    except ActivityError as exc:
        cause = exc.cause
        if isinstance(cause, TimeoutError):
            return ShadowAnswer(
                target=target,
                error_type="Timeout",
                error="no answer within the shadow budget",
                latency_ms=_ms_since(started),
            )
        error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
        return ShadowAnswer(
            target=target,
            error_type=error_type or type(cause or exc).__name__,
            error=str(getattr(cause, "message", None) or cause or exc),
            latency_ms=_ms_since(started),
        )
