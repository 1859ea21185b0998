"""The contracts registry users declare, and the classification contract as its first user."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from modelbaton import (
    ContractRegistry,
    DuplicateSchemaError,
    ModelOutputError,
    UnknownSchemaVersionError,
)
from modelbaton.contracts import OUTPUT_SCHEMAS, ClassificationResultV1, ClassificationResultV2
from modelbaton.contracts.registry import CLASSIFICATION


class Reading(BaseModel):
    celsius: float


class RawV1(BaseModel):
    temp_f: float


class RawV2(BaseModel):
    temp: dict[str, float]


def registry() -> ContractRegistry[Reading]:
    reg: ContractRegistry[Reading] = ContractRegistry("thermo", canonical=Reading)

    @reg.schema(1, RawV1)
    def from_v1(raw: RawV1) -> Reading:
        return Reading(celsius=round((raw.temp_f - 32) * 5 / 9, 2))

    reg.register(2, RawV2, lambda raw: Reading(celsius=raw.temp["c"]))
    return reg


def test_both_versions_normalize_to_the_one_canonical_type() -> None:
    reg = registry()
    assert reg.versions == [1, 2]
    assert reg.normalize(1, {"temp_f": 212.0}) == Reading(celsius=100.0)
    assert reg.normalize(2, {"temp": {"c": 21.5}}) == Reading(celsius=21.5)


def test_a_version_registered_twice_is_an_error_naming_it() -> None:
    reg = registry()
    with pytest.raises(DuplicateSchemaError) as err:
        reg.register(2, RawV1, lambda raw: Reading(celsius=0.0))
    assert str(err.value) == (
        "contracts 'thermo': output schema v2 is registered twice (RawV2 and RawV1)"
    )


def test_an_unknown_version_names_the_registry_and_the_known_ones() -> None:
    with pytest.raises(UnknownSchemaVersionError, match=r"'thermo' \(known: 1, 2\)"):
        registry().normalize(7, {})


def test_malformed_raw_output_names_the_field() -> None:
    with pytest.raises(ModelOutputError) as err:
        registry().normalize(2, {"temp": "hot"})
    assert err.value.field == "temp"
    assert err.value.schema_version == 2


def test_a_normalizer_returning_another_type_is_refused() -> None:
    reg: ContractRegistry[Reading] = ContractRegistry("bad", canonical=Reading)
    reg.register(1, RawV1, lambda raw: {"celsius": 1.0})
    with pytest.raises(Exception, match="returned dict, not Reading"):
        reg.normalize(1, {"temp_f": 1.0})


@pytest.mark.parametrize("version", [0, -1, True, "1"])
def test_bad_versions_are_refused(version: object) -> None:
    reg: ContractRegistry[Reading] = ContractRegistry("thermo", canonical=Reading)
    with pytest.raises(Exception, match="integer >= 1"):
        reg.register(version, RawV1, lambda raw: Reading(celsius=0.0))  # type: ignore[arg-type]


def test_a_raw_schema_must_be_a_pydantic_model() -> None:
    reg: ContractRegistry[Reading] = ContractRegistry("thermo", canonical=Reading)
    with pytest.raises(Exception, match="pydantic model class"):
        reg.register(1, dict, lambda raw: Reading(celsius=0.0))  # type: ignore[arg-type]


def test_the_classification_schemas_are_built_from_a_registry() -> None:
    assert OUTPUT_SCHEMAS is CLASSIFICATION.schemas
    assert sorted(OUTPUT_SCHEMAS) == [1, 2]
    assert OUTPUT_SCHEMAS[1].raw_model is ClassificationResultV1
    assert OUTPUT_SCHEMAS[2].raw_model is ClassificationResultV2
    assert OUTPUT_SCHEMAS[2].label_fields == {"label": "value", "class_order": "items"}
    with pytest.raises(DuplicateSchemaError, match="'classification': output schema v1"):
        CLASSIFICATION.register(1, ClassificationResultV2, lambda raw, config: None)
    assert OUTPUT_SCHEMAS[1].raw_model is ClassificationResultV1
