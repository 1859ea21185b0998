"""The registry of patch ids used by the pipeline's workflows.

``baton patches`` reads this registry to say, per patch, whether it can be deprecated or removed.
A patch id must never be reused for a different change: histories hold it forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from modelbaton.pipeline.messages import WORKFLOW_TYPE

PATCH_CLASSIFY_V2 = "PATCH_CLASSIFY_V2"
PATCH_MODEL_ASSIGNMENT = "PATCH_MODEL_ASSIGNMENT"
PATCH_SHADOW = "PATCH_SHADOW"
PATCH_RESTORE_V1 = "PATCH_RESTORE_V1"


@dataclass(frozen=True)
class PatchInfo:
    """One patch: where it lives, what it changed, and when its deprecation shipped.

    ``deprecated_since`` is set when the release that calls ``deprecate_patch`` is deployed.
    Both ``patched`` and ``deprecate_patch`` upsert the same ``TemporalChangeVersion`` value, so
    visibility cannot tell their markers apart; the start time against this instant can.
    """

    patch_id: str
    workflow_type: str
    description: str
    deprecated_since: datetime | None = None


PATCHES: tuple[PatchInfo, ...] = (
    PatchInfo(
        PATCH_CLASSIFY_V2,
        WORKFLOW_TYPE,
        "classify through the output-schema-specific activity (v2 models) instead of v1 only",
    ),
    PatchInfo(
        PATCH_MODEL_ASSIGNMENT,
        WORKFLOW_TYPE,
        "classify on the assigned model's pool queue, by its output schema, resolving the "
        "endpoint at call time (input records identity, not configuration)",
    ),
    PatchInfo(
        PATCH_SHADOW,
        WORKFLOW_TYPE,
        "call a shadowed rollout's candidate beside the primary classify, without waiting for "
        "it, and record the comparison",
    ),
    PatchInfo(
        PATCH_RESTORE_V1,
        WORKFLOW_TYPE,
        "rollback scenario C (release restored, not shipped): bring back the schema-1 path that "
        "complete removed, classifying by the configured model's output schema; histories "
        "without the marker keep complete's v2-only path",
    ),
)


def patch_markers(history: WorkflowHistory) -> dict[str, bool]:
    """Patch ids recorded in a history, each mapped to whether it was recorded as deprecated.

    The SDK core writes a ``core_patch`` marker whose ``patch-data`` payload is JSON such as
    ``{"id": "PATCH_CLASSIFY_V2", "deprecated": false}``.
    """
    found: dict[str, bool] = {}
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != "core_patch" or "patch-data" not in attrs.details:
            continue
        for payload in attrs.details["patch-data"].payloads:
            data = json.loads(payload.data)
            found[str(data["id"])] = bool(data.get("deprecated", False))
    return found
