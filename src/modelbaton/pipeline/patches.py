"""The registry of patch ids used by the pipeline's workflows.

``baton patches`` reads this registry to say, per patch, whether it can be deprecated or removed.
A patch id must never be reused for a different change: histories hold it forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelbaton.pipeline.messages import WORKFLOW_TYPE

PATCH_CLASSIFY_V2 = "PATCH_CLASSIFY_V2"


@dataclass(frozen=True)
class PatchInfo:
    """One patch: where it lives and what it changed."""

    patch_id: str
    workflow_type: str
    description: str


PATCHES: tuple[PatchInfo, ...] = (
    PatchInfo(
        PATCH_CLASSIFY_V2,
        WORKFLOW_TYPE,
        "classify through the output-schema-specific activity (v2 models) instead of v1 only",
    ),
)
