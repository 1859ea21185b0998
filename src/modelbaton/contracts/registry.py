"""Registry of raw output schema versions: each maps to its raw model and its normalizer.

Adding an output schema version is one new module (``raw_vN.py`` with the raw model and a
``normalize_vN`` function) plus one entry in ``OUTPUT_SCHEMAS`` below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from modelbaton.contracts import raw_v1, raw_v2
from modelbaton.contracts.canonical import NormalizedClassificationResult
from modelbaton.contracts.config import ModelVersionConfig
from modelbaton.errors import ModelOutputError, UnknownSchemaVersionError

Normalizer = Callable[[Any, ModelVersionConfig], NormalizedClassificationResult]


@dataclass(frozen=True)
class OutputSchema:
    """One registered raw output schema version."""

    version: int
    raw_model: type[BaseModel]
    normalizer: Normalizer
    #: Fields that carry class labels: the label itself ("value"), a dict's keys ("keys") or a
    #: list's items ("items"). The compatibility checker constrains them to a model's label set.
    label_fields: Mapping[str, str]
    canonical_version: int = 1

    @property
    def normalizer_name(self) -> str:
        return getattr(self.normalizer, "__qualname__", repr(self.normalizer))


OUTPUT_SCHEMAS: dict[int, OutputSchema] = {
    raw_v1.SCHEMA_VERSION: OutputSchema(
        1,
        raw_v1.ClassificationResultV1,
        raw_v1.normalize_v1,
        label_fields={"label": "value", "raw_scores": "keys"},
    ),
    raw_v2.SCHEMA_VERSION: OutputSchema(
        2,
        raw_v2.ClassificationResultV2,
        raw_v2.normalize_v2,
        label_fields={"label": "value", "class_order": "items"},
    ),
}


def get_output_schema(version: int) -> OutputSchema:
    """Return the registered schema, or raise :class:`UnknownSchemaVersionError`."""
    try:
        return OUTPUT_SCHEMAS[version]
    except KeyError:
        known = ", ".join(str(v) for v in sorted(OUTPUT_SCHEMAS))
        raise UnknownSchemaVersionError(
            f"output schema version {version} is not registered (known: {known}); add a raw_v"
            f"{version} module and an entry in modelbaton.contracts.registry.OUTPUT_SCHEMAS"
        ) from None


def parse_raw(version: int, payload: Mapping[str, Any]) -> BaseModel:
    """Validate a decoded model response against the raw schema of ``version``."""
    schema = get_output_schema(version)
    try:
        return schema.raw_model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ModelOutputError(first["msg"], field=field, schema_version=version) from None


def normalize(
    payload: Mapping[str, Any] | BaseModel, config: ModelVersionConfig
) -> NormalizedClassificationResult:
    """Parse (if needed) and normalize a raw output of ``config``'s output schema version.

    When the catalog declares a label set for the version, the label and every scored class must
    belong to it: a model that starts emitting an undeclared class is caught at the boundary.
    """
    version = config.output_schema_version
    schema = get_output_schema(version)
    raw = payload if isinstance(payload, BaseModel) else parse_raw(version, payload)
    if not isinstance(raw, schema.raw_model):
        raise ModelOutputError(
            f"expected {schema.raw_model.__name__}, got {type(raw).__name__}",
            field="<root>",
            schema_version=version,
        )
    result = schema.normalizer(raw, config)
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
