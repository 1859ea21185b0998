"""Each verdict of the checker against evidence: instances generated from the writer's schema, read
by the reader's Pydantic model.

BACKWARD: the old schema writes, the new model reads. FORWARD: the new schema writes, the old model
reads. Where the checker says a direction is compatible, every generated instance must validate;
where it says the direction breaks, the search must find an instance that does not.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelbaton.compat import ChangeKind, diff_schemas, model_schema

FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SEARCH = settings(max_examples=400, deadline=None, derandomize=True, database=None)


class Base(BaseModel):
    label: str
    score: float


class WithOptional(Base):
    note: str | None = None


class WithRequired(Base):
    note: str


class LabelOnly(BaseModel):
    label: str


class Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str


class ForbiddingPlus(Forbidding):
    note: int | None = None


class IntOrStr(BaseModel):
    x: int | str


class Int(BaseModel):
    x: int


class NullableInt(BaseModel):
    x: int | None


class Float(BaseModel):
    x: float


class Str(BaseModel):
    x: str


class Prefixed(BaseModel):
    x: str = Field(pattern="^a")


class Short(BaseModel):
    x: str = Field(max_length=3)


class LitA(BaseModel):
    x: Literal["a"]


class LitB(BaseModel):
    x: Literal["b"]


class Two(BaseModel):
    x: Literal["a", "b"]


class Three(BaseModel):
    x: Literal["a", "b", "c"]


class Loose(BaseModel):
    x: float = Field(ge=0)


class Tight(BaseModel):
    x: float = Field(ge=0, le=1)


class Map(BaseModel):
    x: dict[str, float]


class Arr(BaseModel):
    x: list[float]


class FewItems(BaseModel):
    x: list[int] = Field(max_length=2)


class Ints(BaseModel):
    x: list[int]


class A(BaseModel):
    a: int


class B(BaseModel):
    b: str


class OnlyA(BaseModel):
    x: A


class AOrB(BaseModel):
    x: A | B


# (old, new, breaks BACKWARD, breaks FORWARD, change kinds)
CASES: list[tuple[type[BaseModel], type[BaseModel], bool, bool, set[ChangeKind]]] = [
    (Base, WithOptional, False, False, {ChangeKind.OPTIONAL_FIELD_ADDED}),
    (Base, WithRequired, True, False, {ChangeKind.REQUIRED_FIELD_ADDED}),
    (Base, LabelOnly, False, True, {ChangeKind.FIELD_REMOVED}),
    (Forbidding, ForbiddingPlus, False, True, {ChangeKind.OPTIONAL_FIELD_ADDED}),
    (IntOrStr, Int, True, False, {ChangeKind.UNION_NARROWED}),
    (Int, IntOrStr, False, True, {ChangeKind.UNION_WIDENED}),
    (Int, NullableInt, False, True, {ChangeKind.UNION_WIDENED}),
    (OnlyA, AOrB, False, True, {ChangeKind.UNION_WIDENED}),
    (AOrB, OnlyA, True, False, {ChangeKind.UNION_NARROWED}),
    (Int, Float, False, True, {ChangeKind.TYPE_WIDENED}),
    (Float, Int, True, False, {ChangeKind.TYPE_NARROWED}),
    (Str, Int, True, True, {ChangeKind.TYPE_CHANGED}),
    (LitA, LitB, True, True, {ChangeKind.CONST_CHANGED}),
    (Two, Three, False, True, {ChangeKind.ENUM_EXTENDED}),
    (Three, Two, True, False, {ChangeKind.ENUM_NARROWED}),
    (Str, Two, True, False, {ChangeKind.ENUM_NARROWED}),
    (Str, Prefixed, True, False, {ChangeKind.PATTERN_ADDED}),
    (Prefixed, Str, False, True, {ChangeKind.PATTERN_REMOVED}),
    (Str, Short, True, False, {ChangeKind.CONSTRAINT_TIGHTENED}),
    (Loose, Tight, True, False, {ChangeKind.CONSTRAINT_TIGHTENED}),
    (Tight, Loose, False, True, {ChangeKind.CONSTRAINT_RELAXED}),
    (Ints, FewItems, True, False, {ChangeKind.CONSTRAINT_TIGHTENED}),
    (Map, Arr, True, True, {ChangeKind.MAP_TO_ARRAY}),
]
IDS = [f"{old.__name__}->{new.__name__}" for old, new, *_ in CASES]


def emitted(schema: Any) -> Any:
    """The schema of what a Pydantic writer emits: its declared fields and no others."""
    if isinstance(schema, dict):
        out = {k: emitted(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [emitted(v) for v in schema]
    return schema


def reads(reader: type[BaseModel], instance: Any) -> bool:
    try:
        reader.model_validate_json(json.dumps(instance))
    except ValidationError:
        return False
    return True


def directions(
    old: type[BaseModel], new: type[BaseModel]
) -> list[tuple[str, type[BaseModel], type[BaseModel]]]:
    """(direction, writer, reader)."""
    return [("backward", old, new), ("forward", new, old)]


@pytest.mark.parametrize(("old", "new", "bwd", "fwd", "kinds"), CASES, ids=IDS)
def test_the_checker_names_the_change_and_its_directions(
    old: type[BaseModel],
    new: type[BaseModel],
    bwd: bool,
    fwd: bool,
    kinds: set[ChangeKind],
) -> None:
    found = diff_schemas(model_schema(old), model_schema(new))
    assert {c.kind for c in found} == kinds, found
    assert any(c.breaks_backward for c in found) is bwd
    assert any(c.breaks_forward for c in found) is fwd


@pytest.mark.parametrize(("old", "new"), [(c[0], c[1]) for c in CASES], ids=IDS)
@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_generated_instances_agree_with_the_verdict(
    old: type[BaseModel], new: type[BaseModel], direction: str
) -> None:
    found = diff_schemas(model_schema(old), model_schema(new))
    writer, reader = (old, new) if direction == "backward" else (new, old)
    breaks = any(c.breaks_backward if direction == "backward" else c.breaks_forward for c in found)
    strategy = from_schema(emitted(model_schema(writer)))
    if breaks:
        bad = find(strategy, lambda x: not reads(reader, x), settings=SEARCH)
        assert not reads(reader, bad)
        return

    @FAST
    @given(st.data())
    def every_instance_reads(data: st.DataObject) -> None:
        instance = data.draw(strategy)
        assert reads(reader, instance), instance

    every_instance_reads()
