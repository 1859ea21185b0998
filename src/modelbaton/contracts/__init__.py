"""Contracts: raw output schemas, the canonical contract, configuration. No I/O, no Temporal."""

from modelbaton.contracts.canonical import CANONICAL_VERSIONS, NormalizedClassificationResult
from modelbaton.contracts.config import DeploymentStrategy, ModelVersionConfig
from modelbaton.contracts.raw_v1 import ClassificationResultV1, normalize_v1
from modelbaton.contracts.raw_v2 import ClassificationResultV2, normalize_v2
from modelbaton.contracts.registry import (
    OUTPUT_SCHEMAS,
    OutputSchema,
    get_output_schema,
    normalize,
    parse_raw,
)

__all__ = [
    "CANONICAL_VERSIONS",
    "OUTPUT_SCHEMAS",
    "ClassificationResultV1",
    "ClassificationResultV2",
    "DeploymentStrategy",
    "ModelVersionConfig",
    "NormalizedClassificationResult",
    "OutputSchema",
    "get_output_schema",
    "normalize",
    "normalize_v1",
    "normalize_v2",
    "parse_raw",
]
