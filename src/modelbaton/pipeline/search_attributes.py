"""Custom search attributes the pipeline upserts, so visibility can count workflows per version."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MODEL_VERSION = SearchAttributeKey.for_keyword("ModelVersion")
OUTPUT_SCHEMA_VERSION = SearchAttributeKey.for_int("OutputSchemaVersion")
REVIEW_STATE = SearchAttributeKey.for_keyword("ReviewState")

ALL: tuple[SearchAttributeKey[str] | SearchAttributeKey[int], ...] = (
    MODEL_VERSION,
    OUTPUT_SCHEMA_VERSION,
    REVIEW_STATE,
)


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags that register :data:`ALL` on ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        kind = "Keyword" if key.value_type is str else "Int"
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags
