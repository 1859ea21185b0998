"""The canonical classification contract: what every workflow and downstream activity consumes.

It is stored in workflow histories, so it may only evolve by adding optional fields; a breaking
change is a new class registered in ``CANONICAL_VERSIONS`` while any history may still hold the old
one. ``baton schema check`` enforces FULL_TRANSITIVE compatibility across those versions.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NormalizedClassificationResult(BaseModel):
    """Version-independent classification result.

    ``model_version`` is the catalog version that produced it (``v1``, ``v2`` ...);
    ``schema_version`` is the raw output schema version its normalizer read.
    """

    model_config = ConfigDict(frozen=True)

    label: str = Field(min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)
    scores_by_class: dict[str, float]
    model_version: str = Field(min_length=1)
    schema_version: int = Field(ge=1)


#: Canonical contract versions in release order. Histories may hold any of them.
CANONICAL_VERSIONS: dict[int, type[BaseModel]] = {1: NormalizedClassificationResult}
