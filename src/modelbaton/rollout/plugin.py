"""``AssignmentPlugin``: a model assignment for every start, not only for ``baton submit``.

A ``temporalio`` plugin (``SimplePlugin``) for the client, the worker and the Replayer::

    plugin = AssignmentPlugin([
        AssignedWorkflow(InvoiceWorkflow, business_key=lambda inp, wid: inp.customer,
                         default=modelbaton.steady("invoice-extractor", "v1", 1)),
    ])
    client = await Client.connect(target, plugins=[plugin])   # workers of this client get it too

- **Client** (outbound ``start_workflow``): for the named workflow types, the business key from the
  user's extractor, the plan in force (read as ``read_plan`` does: the rollout workflow's memo,
  else the default), and the assignment :func:`~modelbaton.pipeline.assign.assign` gives, written
  into the :data:`~modelbaton.pipeline.start_assignment.HEADER` header and the search attributes.
  A start that already carries ``ModelVersion`` (a starter that called ``assign()``) or the header
  is left alone.
- **Worker and Replayer**: the inbound workflow interceptor that reads the header, the fallback's
  local activity (worker only: a replay reads its marker), and ``modelbaton`` passed through the
  workflow sandbox so the interceptor and the model call share one context variable.

Plans are cached per (namespace, task queue, model id) for ``plan_ttl`` (default 1 s): a start
or a fallback may use a plan up to that old (plus one read's latency). ``plan_ttl=0`` reads the
plan at every start, as ``baton submit`` does. Concurrent starts on an expired entry each read it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    ClientConfig,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.common import SearchAttributes, TypedSearchAttributes
from temporalio.plugin import SimplePlugin
from temporalio.worker import WorkerConfig, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from modelbaton.contracts.rollout import RolloutPlan
from modelbaton.errors import ConfigError
from modelbaton.pipeline import search_attributes as sa
from modelbaton.pipeline.assign import assign
from modelbaton.pipeline.start_assignment import (
    HEADER,
    AssignedWorkflow,
    AssignmentInterceptor,
    AssignmentResolver,
    ResolveRequest,
    StartAssignment,
    by_type,
    to_header,
)
from modelbaton.rollout.plans import read_plan

PLUGIN_NAME = "modelbaton.AssignmentPlugin"
DEFAULT_PLAN_TTL = timedelta(seconds=1)


class PlanCache:
    """Plans in force, kept ``ttl`` after they were read (monotonic clock)."""

    def __init__(self, ttl: timedelta) -> None:
        if ttl < timedelta(0):
            raise ConfigError(f"AssignmentPlugin: plan_ttl must not be negative, got {ttl}")
        self._ttl = ttl.total_seconds()
        self._plans: dict[tuple[str, str, str], tuple[float, RolloutPlan]] = {}

    async def get(
        self, key: tuple[str, str, str], read: Callable[[], Awaitable[RolloutPlan]]
    ) -> RolloutPlan:
        asked = time.monotonic()
        hit = self._plans.get(key)
        if hit is not None and asked - hit[0] < self._ttl:
            return hit[1]
        plan = await read()
        if self._ttl > 0:
            # Stamped when the read began: the entry is never trusted longer than ttl.
            self._plans[key] = (asked, plan)
        return plan


def _plans_of(
    client: Client, specs: Mapping[str, AssignedWorkflow], cache: PlanCache
) -> Callable[[str, str], Awaitable[RolloutPlan]]:
    """(workflow type, task queue) -> the plan in force for that type's model id."""

    async def plan(workflow_type: str, task_queue: str) -> RolloutPlan:
        spec = specs[workflow_type]
        return await cache.get(
            (client.namespace, task_queue, spec.model_id),
            lambda: read_plan(client, task_queue, spec.model_id, default=spec.default),
        )

    return plan


def _assigned_already(attributes: SearchAttributes | TypedSearchAttributes | None) -> bool:
    if attributes is None:
        return False
    if isinstance(attributes, TypedSearchAttributes):
        return attributes.get(sa.MODEL_VERSION) is not None
    return sa.MODEL_VERSION.name in attributes


def _merged(
    attributes: SearchAttributes | TypedSearchAttributes | None, ours: TypedSearchAttributes
) -> SearchAttributes | TypedSearchAttributes:
    if attributes is None:
        return ours
    if isinstance(attributes, TypedSearchAttributes):
        return TypedSearchAttributes([*attributes.search_attributes, *ours.search_attributes])
    # The deprecated untyped form: add ours in it (the two forms cannot be mixed in one start).
    merged: dict[str, Any] = dict(attributes)
    for pair in ours.search_attributes:
        merged[pair.key.name] = [pair.value]
    return merged


class _StartOutbound(OutboundInterceptor):
    def __init__(
        self,
        next: OutboundInterceptor,
        specs: Mapping[str, AssignedWorkflow],
        plans: Callable[[str, str], Awaitable[RolloutPlan]],
    ) -> None:
        super().__init__(next)
        self._specs = specs
        self._plans = plans

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        spec = self._specs.get(input.workflow)
        if spec is None or HEADER in input.headers or _assigned_already(input.search_attributes):
            return await self.next.start_workflow(input)
        key = spec.key_of(input.args, input.id)
        plan = await self._plans(input.workflow, input.task_queue)
        assigned = assign(key, plan, input.task_queue)
        header = to_header(StartAssignment(model=assigned.model, shadow=assigned.shadow))
        input.headers = {**input.headers, HEADER: header}
        input.search_attributes = _merged(input.search_attributes, assigned.search_attributes)
        return await self.next.start_workflow(input)


class _StartInterceptor(ClientInterceptor):
    def __init__(
        self,
        specs: Mapping[str, AssignedWorkflow],
        plans: Callable[[str, str], Awaitable[RolloutPlan]],
    ) -> None:
        self._specs = specs
        self._plans = plans

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _StartOutbound(next, self._specs, self._plans)


def _modelbaton_passed_through(existing: WorkflowRunner | None) -> WorkflowRunner:
    """The sandbox with ``modelbaton`` passed through (one context variable for the interceptor
    and the model call); any other runner is kept as it is."""
    runner = existing if existing is not None else SandboxedWorkflowRunner()
    if not isinstance(runner, SandboxedWorkflowRunner):
        return runner
    restrictions = runner.restrictions.with_passthrough_modules("modelbaton")
    return dataclasses.replace(runner, restrictions=restrictions)


class AssignmentPlugin(SimplePlugin):
    """Model assignment at start for ``workflows``, on clients, workers and the Replayer."""

    def __init__(
        self, workflows: Sequence[AssignedWorkflow], *, plan_ttl: timedelta = DEFAULT_PLAN_TTL
    ) -> None:
        if not workflows:
            raise ConfigError("AssignmentPlugin needs at least one AssignedWorkflow")
        self._specs = by_type(workflows)
        self._cache = PlanCache(plan_ttl)
        super().__init__(
            PLUGIN_NAME,
            interceptors=[AssignmentInterceptor(self._specs)],
            workflow_runner=_modelbaton_passed_through,
        )

    @property
    def workflow_types(self) -> frozenset[str]:
        return frozenset(self._specs)

    def configure_client(self, config: ClientConfig) -> ClientConfig:
        config = super().configure_client(config)
        # Plans are read through a plain client on the same connection: no plugin, no
        # interceptor, the same namespace and data converter.
        reader = Client(
            config["service_client"],
            namespace=config["namespace"],
            data_converter=config["data_converter"],
        )
        interceptor = _StartInterceptor(self._specs, _plans_of(reader, self._specs, self._cache))
        config["interceptors"] = [*config.get("interceptors", []), interceptor]
        return config

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        config = super().configure_worker(config)
        plans = _plans_of(config["client"], self._specs, self._cache)

        async def plan_of(req: ResolveRequest) -> RolloutPlan:
            if req.workflow_type not in self._specs:
                raise ConfigError(f"AssignmentPlugin does not name workflow {req.workflow_type}")
            return await plans(req.workflow_type, req.task_queue)

        resolver = AssignmentResolver(plan_of)
        config["activities"] = [*config.get("activities", []), resolver.resolve]
        return config
