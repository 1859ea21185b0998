"""The classification pipeline's raw output schema versions, declared on a
:class:`~modelbaton.contracts.schemas.ContractRegistry` like any user's contracts.

Adding an output schema version is one new module (``raw_vN.py`` with the raw model and a
``normalize_vN`` function) plus one ``CLASSIFICATION.register`` call below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from modelbaton.contracts import raw_v1, raw_v2
from modelbaton.contracts.canonical import CANONICAL_VERSIONS, NormalizedClassificationResult
from modelbaton.contracts.config import ModelVersionConfig
from modelbaton.contracts.schemas import ContractRegistry, OutputSchema
from modelbaton.errors import ModelOutputError

__all__ = [
    "CLASSIFICATION",
    "OUTPUT_SCHEMAS",
    "OutputSchema",
    "get_output_schema",
    "normalize",
    "parse_raw",
]

#: The classification contract, declared like any user's: our raw schemas are its first users.
CLASSIFICATION: ContractRegistry[NormalizedClassificationResult] = ContractRegistry(
    "classification",
    canonical=NormalizedClassificationResult,
    canonical_versions=CANONICAL_VERSIONS,
)
CLASSIFICATION.register(
    raw_v1.SCHEMA_VERSION,
    raw_v1.ClassificationResultV1,
    raw_v1.normalize_v1,
    label_fields={"label": "value", "raw_scores": "keys"},
)
CLASSIFICATION.register(
    raw_v2.SCHEMA_VERSION,
    raw_v2.ClassificationResultV2,
    raw_v2.normalize_v2,
    label_fields={"label": "value", "class_order": "items"},
)

#: Read-only view of :data:`CLASSIFICATION` (kept for the modules that read it by version).
OUTPUT_SCHEMAS: Mapping[int, OutputSchema] = CLASSIFICATION.schemas


def get_output_schema(version: int) -> OutputSchema:
    """Return the registered schema, or raise :class:`UnknownSchemaVersionError`."""
    return CLASSIFICATION.get(version)


def parse_raw(version: int, payload: Mapping[str, Any]) -> BaseModel:
    """Validate a decoded model response against the raw schema of ``version``."""
    return CLASSIFICATION.parse(version, payload)


def normalize(
    payload: Mapping[str, Any] | BaseModel, config: ModelVersionConfig
) -> NormalizedClassificationResult:
    """Parse (if needed) and normalize a raw output of ``config``'s output schema version.

    When the catalog declares a label set for the version, the label and every scored class must
    belong to it: a model that starts emitting an undeclared class is caught at the boundary.
    """
    version = config.output_schema_version
    result = CLASSIFICATION.normalize(version, payload, config)
    if config.labels is not None:
        undeclared = sorted(set(result.scores_by_class) - set(config.labels))
        if undeclared:
            raise ModelOutputError(
                f"classes {undeclared} are not in the label set declared for "
                f"{config.model_id}:{config.version}",
                field="label" if result.label in undeclared else "raw_scores",
                schema_version=version,
            )
    return result
