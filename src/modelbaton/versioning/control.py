"""A small typed client for Worker Deployment routing, over the raw gRPC calls.

The Python SDK exposes Worker Versioning's control plane only as protobuf requests on
``client.workflow_service``. This wraps the handful a rollout needs (describe, set current, ramp,
clear the ramp, per-workflow override) in plain dataclasses, refuses the changes Temporal would
refuse or that would strand work (an unknown build, a build no worker polls) with one clear line,
and returns only once the routing change has reached every task queue of the deployment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as ProtoVersion
from temporalio.api.enums.v1 import (
    RoutingConfigUpdateState,
    TaskQueueType,
    VersionDrainageStatus,
    VersioningBehavior,
    WorkerDeploymentVersionStatus,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from modelbaton import polling
from modelbaton.errors import RolloutError
from modelbaton.versioning.builds import Build

#: Codes a server returns for a call it dropped rather than refused; idempotent calls retry them.
_TRANSIENT = frozenset(
    {RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}
)
_TRANSIENT_ATTEMPTS = 5

Request = TypeVar("Request")
Response = TypeVar("Response")


async def _idempotent(call: Callable[[Request], Awaitable[Response]], request: Request) -> Response:
    """An idempotent call (a describe, an override), sent again when the server dropped it
    rather than refused it: CANCELLED under load, seen in CI on a describe and an override; the
    SDK's own retry leaves that code alone."""
    for attempt in range(_TRANSIENT_ATTEMPTS):
        try:
            return await call(request)
        except RPCError as exc:
            if exc.status not in _TRANSIENT or attempt == _TRANSIENT_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


IDENTITY = "baton deploy"
#: A poller counts as live if it polled this recently. The server records when a long poll
#: started, and an idle worker's long poll lasts about a minute, so less would miss live workers;
#: the server itself keeps stopped workers in the poller list for minutes.
POLLER_WINDOW_SECONDS = 90.0
#: How long a routing call waits for its change to reach the task queues before it gives up.
ROUTING_WAIT_SECONDS = 60.0


def _status_name(value: int) -> str:
    name = WorkerDeploymentVersionStatus.Name(value)  # type: ignore[arg-type]
    return name.removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_").lower()


def _drainage_name(value: int) -> str | None:
    if value == VersionDrainageStatus.VERSION_DRAINAGE_STATUS_UNSPECIFIED:
        return None
    name = VersionDrainageStatus.Name(value)  # type: ignore[arg-type]
    return name.removeprefix("VERSION_DRAINAGE_STATUS_").lower()


def _time(ts: Any) -> datetime | None:
    return ts.ToDatetime() if ts.seconds or ts.nanos else None


@dataclass(frozen=True)
class VersionView:
    """One build of the deployment as the server sees it."""

    build_id: str
    status: str  # inactive | current | ramping | draining | drained | created
    drainage: str | None  # draining | drained | None (never drained)
    created: datetime | None
    drainage_checked: datetime | None = None
    last_current: datetime | None = None
    task_queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeploymentView:
    """The deployment's routing: current build, ramping build and percentage, and every build."""

    name: str
    current: str | None
    ramping: str | None
    ramp_percent: float
    revision: int
    propagated: bool
    versions: tuple[VersionView, ...] = field(default_factory=tuple)

    def version(self, build_id: str) -> VersionView | None:
        return next((v for v in self.versions if v.build_id == build_id), None)

    def previous(self) -> str | None:
        """The build that was current most recently before the current one."""
        earlier = [v for v in self.versions if v.build_id != self.current and v.last_current]
        if not earlier:
            return None
        return max(earlier, key=lambda v: v.last_current or datetime.min).build_id

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RoutingChange:
    """What a routing call changed."""

    deployment: str
    current: str | None
    ramping: str | None
    ramp_percent: float
    previous_current: str | None
    seconds_to_propagate: float


class DeploymentControl:
    """Routing of one Worker Deployment (the pipeline's) in the client's namespace."""

    def __init__(
        self,
        client: Client,
        deployment: str,
        *,
        identity: str = IDENTITY,
        poller_window: float = POLLER_WINDOW_SECONDS,
    ) -> None:
        self._client = client
        self.deployment = deployment
        self._identity = identity
        self._poller_window = poller_window

    @property
    def _svc(self) -> Any:
        return self._client.workflow_service

    def build(self, build_id: str) -> Build:
        return Build(self.deployment, build_id)

    async def describe(self) -> DeploymentView:
        """The routing config and every build; RolloutError if the deployment does not exist."""
        try:
            resp = await _idempotent(
                self._svc.describe_worker_deployment,
                DescribeWorkerDeploymentRequest(
                    namespace=self._client.namespace, deployment_name=self.deployment
                ),
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise RolloutError(
                    f"no worker deployment {self.deployment!r} in namespace "
                    f"{self._client.namespace!r}: start a worker with --versioned first"
                ) from None
            raise
        info = resp.worker_deployment_info
        routing = info.routing_config
        versions = tuple(
            VersionView(
                build_id=s.deployment_version.build_id,
                status=_status_name(s.status),
                drainage=_drainage_name(s.drainage_info.status or s.drainage_status),
                created=_time(s.create_time),
                drainage_checked=_time(s.drainage_info.last_checked_time),
                last_current=_time(s.last_current_time),
            )
            for s in info.version_summaries
        )
        state = info.routing_config_update_state
        return DeploymentView(
            name=info.name,
            current=routing.current_deployment_version.build_id or None,
            ramping=routing.ramping_deployment_version.build_id or None,
            ramp_percent=float(routing.ramping_version_percentage)
            if routing.ramping_deployment_version.build_id
            else 0.0,
            revision=int(routing.revision_number),
            # Servers that do not report the state propagate synchronously.
            propagated=state != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS,
            versions=versions,
        )

    async def describe_version(self, build_id: str) -> VersionView:
        """One build, with the task queues it polls; RolloutError naming the known builds if
        the deployment has no such build."""
        try:
            resp = await _idempotent(
                self._svc.describe_worker_deployment_version,
                DescribeWorkerDeploymentVersionRequest(
                    namespace=self._client.namespace,
                    deployment_version=ProtoVersion(
                        deployment_name=self.deployment, build_id=build_id
                    ),
                ),
            )
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise await self.unknown_build(build_id) from None
            raise
        info = resp.worker_deployment_version_info
        return VersionView(
            build_id=info.deployment_version.build_id,
            status=_status_name(info.status),
            drainage=_drainage_name(info.drainage_info.status),
            created=_time(info.create_time),
            drainage_checked=_time(info.drainage_info.last_checked_time),
            task_queues=tuple(
                sorted(
                    {
                        tq.name
                        for tq in info.task_queue_infos
                        if tq.type == TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
                    }
                )
            ),
        )

    async def unknown_build(self, build_id: str) -> RolloutError:
        try:
            known = [v.build_id for v in (await self.describe()).versions]
        except RolloutError as exc:
            return exc
        return RolloutError(
            f"unknown build {build_id!r} in deployment {self.deployment!r} (known: "
            f"{', '.join(known) or 'none'}); a build exists once one of its workers has polled"
        )

    async def pollers(self, build_id: str) -> list[str]:
        """Identities of the workers of ``build_id`` polling its workflow task queues now."""
        version = await self.describe_version(build_id)
        found: list[str] = []
        for queue in version.task_queues:
            resp = await _idempotent(
                self._svc.describe_task_queue,
                DescribeTaskQueueRequest(
                    namespace=self._client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
            )
            now = time.time()
            found += [
                p.identity
                for p in resp.pollers
                if p.deployment_options.build_id == build_id
                and p.deployment_options.deployment_name == self.deployment
                and now - p.last_access_time.ToSeconds() <= self._poller_window
            ]
        return found

    async def await_pollers(self, build_id: str, within: float) -> None:
        """Wait until ``build_id`` shows a worker polling; RolloutError after ``within`` s.

        A build is unknown until its first poll, and the deployment registers its queues a
        moment after that: a worker seen polling its queue is not yet a poller of its build.
        """

        async def polling_now() -> bool:
            try:
                return bool(await self.pollers(build_id))
            except RolloutError:  # the build itself is not registered yet
                return False

        await polling.await_until(
            polling_now,
            within=within,
            every=0.5,
            give_up=lambda: RolloutError(
                f"build {build_id!r} of deployment {self.deployment!r} showed no poller "
                f"within {within:.0f} s"
            ),
        )

    async def require_pollers(self, build_id: str) -> None:
        if not await self.pollers(build_id):
            raise RolloutError(
                f"build {build_id!r} of deployment {self.deployment!r} has no worker polling: "
                "start its workers first (baton worker --versioned), or new workflows would wait"
            )

    async def set_current(self, build_id: str, *, require_pollers: bool = True) -> RoutingChange:
        """Route new workflows (and auto-upgrade ones) to ``build_id``; clears a ramp of it."""
        if require_pollers:
            await self.require_pollers(build_id)
        else:
            await self.describe_version(build_id)
        started = time.monotonic()
        resp = await self._svc.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=self._client.namespace,
                deployment_name=self.deployment,
                build_id=build_id,
                identity=self._identity,
                allow_no_pollers=not require_pollers,
            )
        )
        view = await self._await_routing(lambda v: v.current == build_id)
        return RoutingChange(
            deployment=self.deployment,
            current=view.current,
            ramping=view.ramping,
            ramp_percent=view.ramp_percent,
            previous_current=resp.previous_deployment_version.build_id or None,
            seconds_to_propagate=time.monotonic() - started,
        )

    async def set_ramping(self, build_id: str, percent: float) -> RoutingChange:
        """Send ``percent`` % of new workflows (chosen by workflow id) to ``build_id``."""
        if not 0.0 <= percent <= 100.0:
            raise RolloutError(f"ramp percentage {percent}: must be between 0 and 100")
        view = await self.describe()
        if view.current == build_id:
            raise RolloutError(f"build {build_id!r} is already current; nothing to ramp")
        await self.require_pollers(build_id)
        started = time.monotonic()
        await self._svc.set_worker_deployment_ramping_version(
            SetWorkerDeploymentRampingVersionRequest(
                namespace=self._client.namespace,
                deployment_name=self.deployment,
                build_id=build_id,
                percentage=percent,
                identity=self._identity,
            )
        )
        after = await self._await_routing(
            lambda v: v.ramping == build_id and abs(v.ramp_percent - percent) < 1e-6
        )
        return RoutingChange(
            self.deployment,
            after.current,
            after.ramping,
            after.ramp_percent,
            view.current,
            time.monotonic() - started,
        )

    async def clear_ramp(self) -> RoutingChange:
        """Stop ramping: every new workflow goes to the current build."""
        view = await self.describe()
        started = time.monotonic()
        if view.ramping is not None:
            await self._svc.set_worker_deployment_ramping_version(
                SetWorkerDeploymentRampingVersionRequest(
                    namespace=self._client.namespace,
                    deployment_name=self.deployment,
                    build_id="",
                    percentage=0.0,
                    identity=self._identity,
                )
            )
        after = await self._await_routing(lambda v: v.ramping is None)
        return RoutingChange(
            self.deployment,
            after.current,
            None,
            0.0,
            view.current,
            time.monotonic() - started,
        )

    async def _await_routing(
        self, holds: Any, *, within: float = ROUTING_WAIT_SECONDS, every: float = 0.2
    ) -> DeploymentView:
        """Poll until the routing shows the change and it has reached the build's task queues.

        The server's own verdict (``routing_config_update_state``) can lag far behind the task
        queues on a loaded machine, and has been reported to stay IN_PROGRESS for good
        (temporalio/temporal#11842), so the task queues' own routing, which is what decides where
        a new workflow goes, is accepted as proof too."""
        seen: list[DeploymentView] = []

        async def routed() -> DeploymentView | None:
            view = await self.describe()
            seen[:] = [view]
            if holds(view) and (view.propagated or await self._queues_route(view)):
                return view
            return None

        def late() -> RolloutError:
            return RolloutError(
                f"deployment {self.deployment!r}: routing change not propagated within "
                f"{within:.0f} s (current {seen[0].current}, ramping {seen[0].ramping})"
            )

        return await polling.await_until(routed, within=within, every=every, give_up=late)

    async def _queues_route(self, view: DeploymentView) -> bool:
        """Whether each workflow task queue of the current and ramping builds routes as ``view``."""
        queues: set[str] = set()
        for build_id in (view.current, view.ramping):
            if build_id is not None:
                queues.update((await self.describe_version(build_id)).task_queues)
        if not queues:
            return False
        for queue in sorted(queues):
            resp = await _idempotent(
                self._svc.describe_task_queue,
                DescribeTaskQueueRequest(
                    namespace=self._client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
            )
            info = resp.versioning_info
            ramping = info.ramping_deployment_version.build_id or None
            if (
                (info.current_deployment_version.build_id or None) != view.current
                or ramping != view.ramping
                or (
                    ramping is not None
                    and abs(info.ramping_version_percentage - view.ramp_percent) > 1e-6
                )
            ):
                return False
        return True

    async def pin_workflow(self, workflow_id: str, build_id: str | None) -> None:
        """Override one workflow's versioning: pinned to ``build_id``, or None to clear it."""
        override = (
            VersioningOverride(
                pinned=VersioningOverride.PinnedOverride(
                    behavior=VersioningOverride.PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
                    version=ProtoVersion(deployment_name=self.deployment, build_id=build_id),
                )
            )
            if build_id is not None
            else None
        )
        await self._update_override(workflow_id, override)

    async def auto_upgrade_workflow(self, workflow_id: str) -> None:
        """Override one workflow to follow the current build from its next task on."""
        await self._update_override(workflow_id, VersioningOverride(auto_upgrade=True))

    async def _update_override(self, workflow_id: str, override: VersioningOverride | None) -> None:
        options = (
            WorkflowExecutionOptions(versioning_override=override)
            if override is not None
            else WorkflowExecutionOptions()
        )
        request = UpdateWorkflowExecutionOptionsRequest(
            namespace=self._client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            workflow_execution_options=options,
            update_mask=FieldMask(paths=["versioning_override"]),
            identity=self._identity,
        )
        # Setting an override is idempotent.
        await _idempotent(self._svc.update_workflow_execution_options, request)


def workflow_build(description: Any) -> tuple[str | None, str | None]:
    """``(build_id, behavior)`` of a described workflow (``handle.describe()``)."""
    info = description.raw_description.workflow_execution_info.versioning_info
    build = info.deployment_version.build_id or None
    if info.versioning_override.HasField("pinned"):
        build = info.versioning_override.pinned.version.build_id or build
    behavior = (
        VersioningBehavior.Name(info.behavior).removeprefix("VERSIONING_BEHAVIOR_").lower()
        if info.behavior
        else None
    )
    return build, behavior
