"""The assignment of a workflow that was started without one in its input.

Two ways in, both recorded in the workflow's history, so replay gives the same assignment whatever
the rollout plan says by then:

- **a header** (:data:`HEADER`) that :class:`~modelbaton.rollout.plugin.AssignmentPlugin`'s client
  interceptor writes at start; it is part of the ``WorkflowExecutionStarted`` event;
- **a local activity** (:meth:`AssignmentResolver.resolve`) that resolves the plan in force at the
  workflow's first model call, for starts that bypassed that client (schedules, child workflows,
  the Web UI); its result is a marker in history, and the run remembers it.

:class:`AssignmentInterceptor` is the worker side: one inbound interceptor per workflow run reads
the header at start and makes it, or the fallback, available to
:class:`~modelbaton.pipeline.model_call.ModelRoute` through a context variable (set in the run's
own task and in its handlers' tasks, so nothing leaks between runs). The plugin passes
``modelbaton`` through the workflow sandbox so both sides see the same variable.

Workflow code: only deterministic Temporal APIs and pydantic here. The business-key extractor the
user supplies runs inside the workflow on the recorded input, so it must be a pure function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RetryPolicy
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from modelbaton.contracts.rollout import ModelAssignment, RolloutPlan, ShadowAssignment
from modelbaton.errors import ConfigError
from modelbaton.pipeline.assign import search_attributes_for

#: The Temporal header that carries a start's assignment.
HEADER = "modelbaton-assignment"
#: The local activity's type name (stable: histories record it).
RESOLVE_ACTIVITY = "modelbaton.resolve_assignment"
#: One attempt of the fallback; it is retried until the plan can be read (the workflow waits).
RESOLVE_ATTEMPT = timedelta(seconds=10)
RESOLVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)

#: The business-key extractor: (the workflow's first argument or None, the workflow id) -> key.
BusinessKey = Callable[[Any, str], str]


class BusinessKeyError(ConfigError):
    """The business-key extractor failed or returned no key; the message names the workflow."""


class StartAssignment(BaseModel):
    """What a run was assigned at start (the header's payload, the local activity's result)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model: ModelAssignment
    shadow: ShadowAssignment | None = None


class ResolveRequest(BaseModel):
    """What the fallback local activity is asked: identity only (the plan is read when it runs,
    the default plan comes from the worker's configuration)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    workflow_type: str = Field(min_length=1)
    workflow_id: str = Field(min_length=1)
    business_key: str = Field(min_length=1)
    task_queue: str = Field(
        min_length=1, description="The workflow's queue; pools are named from it"
    )
    model_id: str = Field(min_length=1)


def to_header(assigned: StartAssignment) -> Payload:
    """The header payload: plain JSON, independent of the client's data converter."""
    return Payload(metadata={"encoding": b"json/plain"}, data=assigned.model_dump_json().encode())


def from_header(payload: Payload) -> StartAssignment:
    try:
        return StartAssignment.model_validate_json(payload.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ConfigError(f"header {HEADER!r}: {where}: {first['msg']}") from None


@dataclass(frozen=True)
class AssignedWorkflow:
    """A workflow type whose starts get an assignment without carrying one in their input.

    ``workflow`` is a ``@workflow.defn`` class or its type name; ``business_key`` maps the start's
    first argument (None without arguments) and the workflow id to the key the canary hashes;
    ``default`` is the plan while no rollout workflow exists (``modelbaton.steady(...)``); its
    ``model_id`` names the rollout.
    """

    workflow: type | str
    business_key: BusinessKey
    default: RolloutPlan

    @property
    def workflow_type(self) -> str:
        if isinstance(self.workflow, str):
            if not self.workflow:
                raise ConfigError("AssignedWorkflow.workflow: empty workflow type name")
            return self.workflow
        defn = workflow._Definition.from_class(self.workflow)
        if defn is None or defn.name is None:
            raise ConfigError(
                f"AssignedWorkflow.workflow: {self.workflow.__qualname__} is not a @workflow.defn"
            )
        return defn.name

    @property
    def model_id(self) -> str:
        return self.default.model_id

    def key_of(self, args: Sequence[Any], workflow_id: str) -> str:
        """The business key of a start, or a one-line :class:`BusinessKeyError`."""
        where = f"business key of {self.workflow_type} (workflow id {workflow_id!r})"
        try:
            key = self.business_key(args[0] if args else None, workflow_id)
        except Exception as exc:  # the user's code: any failure is reported the same way
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise BusinessKeyError(
                f"{where}: the extractor raised {type(exc).__name__}"
                + (f": {detail}" if detail else "")
            ) from None
        if not isinstance(key, str) or not key:
            raise BusinessKeyError(
                f"{where}: the extractor returned {key!r}, expected a non-empty string"
            )
        return key


def by_type(workflows: Sequence[AssignedWorkflow]) -> dict[str, AssignedWorkflow]:
    """The specs keyed by workflow type; a type named twice is a configuration error."""
    specs: dict[str, AssignedWorkflow] = {}
    for spec in workflows:
        name = spec.workflow_type
        if name in specs:
            raise ConfigError(f"AssignmentPlugin: workflow type {name!r} is named twice")
        specs[name] = spec
    return specs


class AssignmentResolver:
    """The fallback's local activity: the plan in force, applied to the run's business key.

    ``plans`` returns the plan of a request (the plugin reads it as ``read_plan`` does, cached
    briefly, with the workflow type's default while no rollout exists)."""

    def __init__(self, plans: Callable[[ResolveRequest], Awaitable[RolloutPlan]]) -> None:
        self._plans = plans

    @activity.defn(name=RESOLVE_ACTIVITY)
    async def resolve(self, req: ResolveRequest) -> StartAssignment:
        plan = await self._plans(req)
        return StartAssignment(
            model=plan.assign(req.business_key, req.task_queue),
            shadow=plan.shadow_for(req.business_key, req.task_queue),
        )


@dataclass
class RunAssignment:
    """One run's start assignment: the header's, else the fallback's once resolved."""

    workflow_type: str
    header: StartAssignment | None
    spec: AssignedWorkflow | None
    args: Sequence[Any] | None = None
    resolved: StartAssignment | None = None
    _pending: asyncio.Task[StartAssignment] | None = field(default=None, repr=False)

    @property
    def known(self) -> StartAssignment | None:
        """The assignment if it needs no activity (the header's, or already resolved)."""
        return self.header or self.resolved

    async def get(self) -> StartAssignment:
        """The header's assignment, else the fallback's (one local activity per run, shared by
        concurrent first calls)."""
        known = self.known
        if known is not None:
            return known
        if self._pending is None:
            self._pending = asyncio.create_task(self._resolve())
        return await self._pending

    async def _resolve(self) -> StartAssignment:
        if self.spec is None:
            raise ConfigError(
                f"workflow {self.workflow_type} was started without an assignment and "
                "AssignmentPlugin does not name it; add an AssignedWorkflow for it, or pass the "
                "assignment to the model call"
            )
        info = workflow.info()
        req = ResolveRequest(
            workflow_type=self.workflow_type,
            workflow_id=info.workflow_id,
            business_key=self.spec.key_of(self.args or [], info.workflow_id),
            task_queue=info.task_queue,
            model_id=self.spec.model_id,
        )
        resolved = await workflow.execute_local_activity_method(
            AssignmentResolver.resolve,
            req,
            start_to_close_timeout=RESOLVE_ATTEMPT,
            retry_policy=RESOLVE_RETRY,
        )
        # Visibility splits by version and arm as it does for starts through the plugin's client.
        pairs = search_attributes_for(resolved.model).search_attributes
        workflow.upsert_search_attributes([p.key.value_set(p.value) for p in pairs])
        self.resolved = resolved
        return resolved


_CURRENT: ContextVar[RunAssignment | None] = ContextVar("modelbaton_start_assignment", default=None)


def current() -> RunAssignment | None:
    """The running workflow's start assignment context; None without the plugin's interceptor."""
    return _CURRENT.get()


async def run_assignment() -> StartAssignment:
    """Workflow code: the assignment this run was started with (the header's, else the plan
    resolved once through the fallback local activity)."""
    state = current()
    if state is None:
        raise ConfigError(
            "this workflow has no start assignment context: register modelbaton.AssignmentPlugin "
            "on the worker (or on its client), or pass the assignment in the workflow input"
        )
    return await state.get()


class _Inbound(WorkflowInboundInterceptor):
    """Per run: the header at start, the context variable in every task the run's code runs in."""

    specs: Mapping[str, AssignedWorkflow] = {}

    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        self._state: RunAssignment | None = None

    def _run_state(self, headers: Mapping[str, Payload]) -> RunAssignment:
        if self._state is None:
            name = workflow.info().workflow_type
            payload = headers.get(HEADER)
            self._state = RunAssignment(
                workflow_type=name,
                header=from_header(payload) if payload is not None else None,
                spec=self.specs.get(name),
            )
        return self._state

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        state = self._run_state(input.headers)
        state.args = list(input.args)
        _CURRENT.set(state)
        return await self.next.execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        _CURRENT.set(self._run_state(workflow.info().headers))
        return await self.next.handle_signal(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        _CURRENT.set(self._run_state(workflow.info().headers))
        return await self.next.handle_update_handler(input)


class AssignmentInterceptor(Interceptor):
    """The worker side of the plugin (also registered on the Replayer)."""

    def __init__(self, specs: Mapping[str, AssignedWorkflow]) -> None:
        self._class = type("AssignmentInbound", (_Inbound,), {"specs": dict(specs)})

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return self._class
