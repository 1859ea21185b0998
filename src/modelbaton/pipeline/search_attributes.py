"""Custom search attributes the pipeline upserts, so visibility can count workflows per version."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MODEL_VERSION = SearchAttributeKey.for_keyword("ModelVersion")
OUTPUT_SCHEMA_VERSION = SearchAttributeKey.for_int("OutputSchemaVersion")
REVIEW_STATE = SearchAttributeKey.for_keyword("ReviewState")
#: Set at start from the assignment, so visibility (and the Web UI) can split a rollout by arm.
ROLLOUT_ID = SearchAttributeKey.for_keyword("RolloutId")
ROLLOUT_ARM = SearchAttributeKey.for_keyword("RolloutArm")

ALL: tuple[SearchAttributeKey[str] | SearchAttributeKey[int], ...] = (
    MODEL_VERSION,
    OUTPUT_SCHEMA_VERSION,
    REVIEW_STATE,
    ROLLOUT_ID,
    ROLLOUT_ARM,
)


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags that register :data:`ALL` on ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        kind = "Keyword" if key.value_type is str else "Int"
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags
