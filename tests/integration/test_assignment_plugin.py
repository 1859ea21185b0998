"""AssignmentPlugin on the real dev server: workflows started without ``assign()`` get the plan's
assignment, through the start header (plain client with the plugin) or through the fallback's
local activity (a child workflow, a client without the plugin), and both replay with the same
assignment after the plan changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from modelbaton import (
    AssignedWorkflow,
    AssignmentPlugin,
    BusinessKeyError,
    ModelAssignment,
    ModelRef,
    RolloutPlan,
    pool_task_queue,
    pool_worker,
    steady,
)
from modelbaton.rollout.messages import (
    ChangeBy,
    RolloutInput,
    StartCanaryRequest,
    rollout_workflow_id,
)
from modelbaton.rollout.workflow import PLAN_MEMO, RolloutWorkflow
from workflow_variants.assignment_probe import (
    MODEL_ID,
    AssignmentProbe,
    AssignmentProbeParent,
    ProbeInput,
    ProbeOutcome,
    probe_model,
)

pytestmark = pytest.mark.integration

DEFAULT = steady(MODEL_ID, "v1", 1)
V2 = ModelRef(version="v2", output_schema_version=1)
HEADER = "modelbaton-assignment"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
MODEL_VERSION = SearchAttributeKey.for_keyword("ModelVersion")
ROLLOUT_ARM = SearchAttributeKey.for_keyword("RolloutArm")
ROLLOUT_ID = SearchAttributeKey.for_keyword("RolloutId")

#: (workflow id, task queue) of every model activity the replayed code schedules.
SCHEDULED: list[tuple[str, str]] = []


class _RecordOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        SCHEDULED.append((workflow.info().workflow_id, input.task_queue or ""))
        return self.next.start_activity(input)


class _RecordInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_RecordOutbound(outbound))


class RecordActivities(Interceptor):
    """Test-only: what queue the replayed workflow code sends its model call to."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _RecordInbound


def probe_plugin() -> AssignmentPlugin:
    return AssignmentPlugin(
        [
            AssignedWorkflow(
                AssignmentProbe, business_key=lambda inp, _id: inp.customer, default=DEFAULT
            )
        ],
        plan_ttl=timedelta(0),
    )


def with_plugin(client: Client, plugin: AssignmentPlugin) -> Client:
    return Client(
        client.service_client,
        namespace=client.namespace,
        data_converter=pydantic_data_converter,
        plugins=[plugin],
    )


@dataclass
class Stack:
    plain: Client
    plugged: Client
    plugin: AssignmentPlugin
    task_queue: str

    async def start_canary(self, fraction: float, sample: float | None = None) -> RolloutPlan:
        """A rollout of v2 at ``fraction`` (a shadow of ``sample`` when given), through the real
        rollout workflow."""
        handle = self.plain.get_workflow_handle_for(
            RolloutWorkflow.run, rollout_workflow_id(self.task_queue, MODEL_ID)
        )
        plan: RolloutPlan = await handle.execute_update(
            RolloutWorkflow.start_canary,
            StartCanaryRequest(
                actor="test", candidate=V2, fraction=fraction, salt="s", sample=sample
            ),
        )
        return plan

    async def abort(self) -> RolloutPlan:
        handle = self.plain.get_workflow_handle_for(
            RolloutWorkflow.run, rollout_workflow_id(self.task_queue, MODEL_ID)
        )
        plan: RolloutPlan = await handle.execute_update(
            RolloutWorkflow.abort, ChangeBy(actor="test", reason="plan changes under replay")
        )
        return plan


@asynccontextmanager
async def stack(client: Client, task_queue: str) -> AsyncIterator[Stack]:
    plugin = probe_plugin()
    plugged = with_plugin(client, plugin)
    rollout_queue = f"{task_queue}-rollout"
    async with AsyncExitStack() as workers:
        await workers.enter_async_context(
            Worker(client, task_queue=rollout_queue, workflows=[RolloutWorkflow])
        )
        for version in ("v1", "v2"):
            await workers.enter_async_context(
                pool_worker(client, task_queue, version, [probe_model])
            )
        # The plugin on the worker comes with its client: interceptor, fallback, sandbox.
        await workers.enter_async_context(
            Worker(
                plugged, task_queue=task_queue, workflows=[AssignmentProbe, AssignmentProbeParent]
            )
        )
        await client.start_workflow(
            RolloutWorkflow.run,
            RolloutInput(plan=DEFAULT),
            id=rollout_workflow_id(task_queue, MODEL_ID),
            task_queue=rollout_queue,
            memo={PLAN_MEMO: DEFAULT.model_dump(mode="json")},
        )
        yield Stack(plain=client, plugged=plugged, plugin=plugin, task_queue=task_queue)


def started_header(history: WorkflowHistory) -> bytes | None:
    started = history.events[0].workflow_execution_started_event_attributes
    field = started.header.fields.get(HEADER)
    return field.data if field is not None else None


def markers(history: WorkflowHistory) -> list[str]:
    return [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def replay(plugin: AssignmentPlugin, *histories: WorkflowHistory) -> list[tuple[str, str]]:
    """Replay with the plugin registered; the model calls' queues the replayed code chose."""
    SCHEDULED.clear()
    replayer = Replayer(
        workflows=[AssignmentProbe, AssignmentProbeParent],
        plugins=[plugin],
        interceptors=[RecordActivities()],
        data_converter=pydantic_data_converter,
    )
    for history in histories:
        await replayer.replay_workflow(history)
    return list(SCHEDULED)


async def test_a_plain_start_through_the_plugin_gets_the_plans_assignment(
    client: Client, task_queue: str
) -> None:
    async with stack(client, task_queue) as s:
        plan = await s.start_canary(1.0)
        wid = f"probe-{uuid.uuid4().hex[:8]}"
        # No assign(), no assignment in the input, no search attributes: only the plugin.
        handle = await s.plugged.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="acme", text="hello"),
            id=wid,
            task_queue=task_queue,
        )
        outcome: ProbeOutcome = await handle.result()
        assert outcome.answered_by == ["v2", "v2"]
        assert (outcome.arm, outcome.key, outcome.rollout_id) == (
            "candidate",
            "acme",
            plan.rollout_id,
        )
        attributes = (await handle.describe()).typed_search_attributes
        assert attributes.get(MODEL_VERSION) == "v2"
        assert attributes.get(ROLLOUT_ARM) == "candidate"
        assert attributes.get(ROLLOUT_ID) == plan.rollout_id

        history = await handle.fetch_history()
        assert started_header(history) is not None
        assert markers(history) == []  # no fallback: the header answered

        v2_pool = pool_task_queue(task_queue, "v2")
        assert await replay(s.plugin, history) == [(wid, v2_pool), (wid, v2_pool)]

        # The plan changes (v2 withdrawn): new starts take v1, the recorded run replays on v2.
        await s.abort()
        after = await s.plugged.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="acme", text="x"),
            id=f"{wid}-after",
            task_queue=task_queue,
        )
        assert (await after.result()).answered_by == ["v1", "v1"]
        assert await replay(s.plugin, history) == [(wid, v2_pool), (wid, v2_pool)]


async def test_starts_that_bypass_the_plugin_resolve_through_a_local_activity(
    client: Client, task_queue: str
) -> None:
    async with stack(client, task_queue) as s:
        plan = await s.start_canary(1.0)
        # A child of a workflow (its start never passes a client interceptor) ...
        parent = await s.plugged.start_workflow(
            AssignmentProbeParent.run,
            ProbeInput(customer="globex", text="child"),
            id=f"parent-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        child_outcome: ProbeOutcome = await parent.result()
        child = s.plain.get_workflow_handle(f"{parent.id}-child")
        # ... and a start through a client without the plugin.
        plain = await s.plain.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="initech", text="plain"),
            id=f"plain-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        plain_outcome: ProbeOutcome = await plain.result()

        for outcome, key in ((child_outcome, "globex"), (plain_outcome, "initech")):
            assert outcome.answered_by == ["v2", "v2"]
            assert (outcome.arm, outcome.key, outcome.rollout_id) == (
                "candidate",
                key,
                plan.rollout_id,
            )
        histories = [await child.fetch_history(), await plain.fetch_history()]
        for handle, history in zip((child, plain), histories, strict=True):
            assert started_header(history) is None
            # One local activity for the run, remembered by the second model call.
            assert markers(history) == [LOCAL_ACTIVITY_MARKER]
            attributes = (await handle.describe()).typed_search_attributes
            assert attributes.get(MODEL_VERSION) == "v2"
            assert attributes.get(ROLLOUT_ARM) == "candidate"

        v2_pool = pool_task_queue(task_queue, "v2")
        expected = [(h.id, v2_pool) for h in (child, plain) for _ in range(2)]
        assert await replay(s.plugin, *histories) == expected

        await s.abort()
        again = await s.plain.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="initech", text="again"),
            id=f"{plain.id}-again",
            task_queue=task_queue,
        )
        assert (await again.result()).answered_by == ["v1", "v1"]
        # Identity in history: the recorded marker, not today's plan, decides on replay.
        assert await replay(s.plugin, *histories) == expected


async def test_a_business_key_that_cannot_be_extracted_refuses_the_start(
    client: Client, task_queue: str
) -> None:
    plugin = AssignmentPlugin(
        [
            AssignedWorkflow(
                AssignmentProbe, business_key=lambda inp, _id: inp.tenant, default=DEFAULT
            )
        ]
    )
    wid = f"nokey-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BusinessKeyError) as caught:
        await with_plugin(client, plugin).start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="acme", text="x"),
            id=wid,
            task_queue=task_queue,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert f"business key of AssignmentProbe (workflow id '{wid}')" in message
    assert "AttributeError" in message
    # Nothing was started (describe reads the execution itself, not lagging visibility).
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(wid).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_an_explicit_assignment_wins_and_shadows_come_with_the_header_or_the_fallback(
    client: Client, task_queue: str
) -> None:
    async with stack(client, task_queue) as s:
        plan = await s.start_canary(0.0, sample=1.0)  # v1 serves, v2 shadows every key
        assert plan.stage.value == "shadow"
        via_header = await s.plugged.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="acme", text="a"),
            id=f"shadow-h-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        via_fallback = await s.plain.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="acme", text="b"),
            id=f"shadow-f-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        for handle in (via_header, via_fallback):
            outcome: ProbeOutcome = await handle.result()
            assert (outcome.answered_by, outcome.shadowed_by) == (["v1", "v1"], ["v2"])

        # The input's assignment (v2 on its pool, as a starter's assign() would record) wins over
        # the header the plugin still writes (the start carries no ModelVersion attribute).
        explicit = ModelAssignment(
            model_id=MODEL_ID,
            model_version="v2",
            output_schema_version=1,
            task_queue=pool_task_queue(task_queue, "v2"),
        )
        handle = await s.plugged.start_workflow(
            AssignmentProbe.run,
            ProbeInput(customer="acme", text="c", assignment=explicit),
            id=f"explicit-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        outcome = await handle.result()
        assert (outcome.answered_by, outcome.shadowed_by) == (["v2", "v2"], [])
        assert started_header(await handle.fetch_history()) is not None
