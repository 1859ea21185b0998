"""The released stages of DocumentClassificationWorkflow, one module per patch lifecycle stage.

All share the workflow type name, so any of them can resume the others' histories where the
patching rules allow it. ``RELEASES`` maps a release name to its workflow class.
"""

from __future__ import annotations

from modelbaton.pipeline.releases import r1_initial, r2_patched, r3_deprecated, r4_complete

RELEASES: dict[str, type] = {
    "initial": r1_initial.DocumentClassificationWorkflow,
    "patched": r2_patched.DocumentClassificationWorkflow,
    "deprecated": r3_deprecated.DocumentClassificationWorkflow,
    "complete": r4_complete.DocumentClassificationWorkflow,
}
CURRENT_RELEASE = "patched"

__all__ = ["CURRENT_RELEASE", "RELEASES"]
