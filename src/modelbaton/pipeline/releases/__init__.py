"""The released stages of DocumentClassificationWorkflow, one module per patch lifecycle stage.

All share the workflow type name, so any of them can resume the others' histories where the
patching rules allow it. ``RELEASES`` maps a release name to its workflow class. ``deprecated`` and
``complete`` are the later lifecycle stages of ``PATCH_CLASSIFY_V2`` as they would ship on top of
``patched``; ``assigned`` adds ``PATCH_MODEL_ASSIGNMENT`` on top of ``patched``.
"""

from __future__ import annotations

from modelbaton.pipeline.releases import (
    r1_initial,
    r2_patched,
    r3_deprecated,
    r4_complete,
    r5_assigned,
)

RELEASES: dict[str, type] = {
    "initial": r1_initial.DocumentClassificationWorkflow,
    "patched": r2_patched.DocumentClassificationWorkflow,
    "deprecated": r3_deprecated.DocumentClassificationWorkflow,
    "complete": r4_complete.DocumentClassificationWorkflow,
    "assigned": r5_assigned.DocumentClassificationWorkflow,
}
CURRENT_RELEASE = "assigned"
#: Releases that shipped, in order: today's code must replay every history they recorded.
#: ``deprecated`` and ``complete`` never shipped; they serve the lifecycle matrix tests.
SHIPPED = ("initial", "patched", "assigned")

__all__ = ["CURRENT_RELEASE", "RELEASES", "SHIPPED"]
