"""Compatibility rules on hand-made models, and on the registered raw schemas."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from modelbaton.compat import (
    Change,
    ChangeKind,
    check_transitive,
    compare_schemas,
    diff_schemas,
    model_schema,
    schema_for,
)
from modelbaton.contracts import OUTPUT_SCHEMAS


def changes(old: type[BaseModel], new: type[BaseModel]) -> dict[str, Change]:
    return {c.path: c for c in diff_schemas(model_schema(old), model_schema(new))}


def only(old: type[BaseModel], new: type[BaseModel]) -> Change:
    found = list(changes(old, new).values())
    assert len(found) == 1, found
    return found[0]


class Base(BaseModel):
    label: str
    score: float


class WithOptional(Base):
    note: str | None = None


class WithRequired(Base):
    note: str


class Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    score: float


class ForbiddingPlus(Forbidding):
    note: str | None = None


def test_identical_models_have_no_changes() -> None:
    assert changes(Base, Base) == {}


def test_optional_field_added_breaks_nothing_because_extras_are_ignored() -> None:
    c = only(Base, WithOptional)
    assert c.kind is ChangeKind.OPTIONAL_FIELD_ADDED
    assert not c.breaking


def test_optional_field_added_breaks_forward_when_old_reader_forbids_extras() -> None:
    c = only(Forbidding, ForbiddingPlus)
    assert (c.kind, c.breaks_backward, c.breaks_forward) == (
        ChangeKind.OPTIONAL_FIELD_ADDED,
        False,
        True,
    )


def test_required_field_added_breaks_backward_only() -> None:
    c = only(Base, WithRequired)
    assert (c.path, c.kind, c.breaks_backward, c.breaks_forward) == (
        "/note",
        ChangeKind.REQUIRED_FIELD_ADDED,
        True,
        False,
    )


def test_required_field_removed_breaks_forward_only() -> None:
    class Smaller(BaseModel):
        label: str

    c = only(Base, Smaller)
    assert (c.kind, c.breaks_backward, c.breaks_forward) == (ChangeKind.FIELD_REMOVED, False, True)


def test_map_to_array_breaks_both() -> None:
    class Map(BaseModel):
        scores: dict[str, float]

    class Arr(BaseModel):
        scores: list[float]

    c = only(Map, Arr)
    assert (c.path, c.kind, c.breaks_backward, c.breaks_forward) == (
        "/scores",
        ChangeKind.MAP_TO_ARRAY,
        True,
        True,
    )
    assert only(Arr, Map).kind is ChangeKind.ARRAY_TO_MAP


def test_int_to_float_widens_and_breaks_forward_only() -> None:
    class Int(BaseModel):
        n: int

    class F(BaseModel):
        n: float

    wide = only(Int, F)
    assert (wide.kind, wide.breaks_backward, wide.breaks_forward) == (
        ChangeKind.TYPE_WIDENED,
        False,
        True,
    )
    narrow = only(F, Int)
    assert (narrow.kind, narrow.breaks_backward, narrow.breaks_forward) == (
        ChangeKind.TYPE_NARROWED,
        True,
        False,
    )


def test_str_to_int_breaks_both() -> None:
    class S(BaseModel):
        x: str

    class N(BaseModel):
        x: int

    assert only(S, N).kind is ChangeKind.TYPE_CHANGED
    assert only(S, N).breaks_backward
    assert only(S, N).breaks_forward


def test_enum_extended_breaks_forward_and_narrowed_breaks_backward() -> None:
    class Two(BaseModel):
        kind: Literal["a", "b"]

    class Three(BaseModel):
        kind: Literal["a", "b", "c"]

    ext = only(Two, Three)
    assert (ext.kind, ext.breaks_backward, ext.breaks_forward) == (
        ChangeKind.ENUM_EXTENDED,
        False,
        True,
    )
    assert "['c']" in ext.detail
    nar = only(Three, Two)
    assert (nar.kind, nar.breaks_backward, nar.breaks_forward) == (
        ChangeKind.ENUM_NARROWED,
        True,
        False,
    )


def test_nested_models_through_refs_and_optional() -> None:
    class InnerA(BaseModel):
        scores: dict[str, float]

    class InnerB(BaseModel):
        scores: list[float]

    class OuterA(BaseModel):
        inner: InnerA | None = None

    class OuterB(BaseModel):
        inner: InnerB | None = None

    c = only(OuterA, OuterB)
    assert (c.path, c.kind) == ("/inner/scores", ChangeKind.MAP_TO_ARRAY)


def test_constraint_tightened_breaks_backward() -> None:
    class Loose(BaseModel):
        x: float = Field(ge=0)

    class Tight(BaseModel):
        x: float = Field(ge=0, le=1)

    c = only(Loose, Tight)
    assert (c.kind, c.breaks_backward, c.breaks_forward) == (
        ChangeKind.CONSTRAINT_TIGHTENED,
        True,
        False,
    )
    assert only(Tight, Loose).kind is ChangeKind.CONSTRAINT_RELAXED


def test_registered_v1_to_v2_flags_raw_scores_both_ways() -> None:
    old = schema_for(OUTPUT_SCHEMAS[1], None)
    new = schema_for(OUTPUT_SCHEMAS[2], None)
    found = {c.path: c for c in diff_schemas(old, new)}
    assert found["/raw_scores"].kind is ChangeKind.MAP_TO_ARRAY
    assert found["/raw_scores"].breaks_backward
    assert found["/raw_scores"].breaks_forward
    assert found["/class_order"].kind is ChangeKind.REQUIRED_FIELD_ADDED
    assert set(found) == {"/raw_scores", "/class_order"}


def test_label_set_extension_is_reported_with_the_new_labels() -> None:
    eight = tuple(f"class_{i}" for i in range(8))
    nine = (*eight, "tax_form")
    old = schema_for(OUTPUT_SCHEMAS[2], eight)
    new = schema_for(OUTPUT_SCHEMAS[2], nine)
    found = diff_schemas(old, new)
    assert {c.path for c in found} == {"/label", "/class_order/[]"}
    for c in found:
        assert c.kind is ChangeKind.LABEL_SET_EXTENDED
        assert (c.breaks_backward, c.breaks_forward) == (False, True)
        assert "tax_form" in c.detail
    narrowed = diff_schemas(new, old)
    assert {c.kind for c in narrowed} == {ChangeKind.LABEL_SET_NARROWED}


def test_v1_label_set_lives_in_the_dict_keys() -> None:
    old = schema_for(OUTPUT_SCHEMAS[1], ("a", "b"))
    new = schema_for(OUTPUT_SCHEMAS[1], ("a", "b", "c"))
    assert {c.path for c in diff_schemas(old, new)} == {"/label", "/raw_scores"}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_transitive_compares_every_later_version_with_every_earlier(n: int) -> None:
    versions = [(f"v{i}", model_schema(Base)) for i in range(n)]
    report = check_transitive("t", versions, compare_schemas)
    assert len(report.pairs) == n * (n - 1) // 2
    assert report.compatible


def test_transitive_catches_a_break_two_versions_back() -> None:
    class V3(BaseModel):
        label: str
        score: float
        note: str

    versions = [
        ("v1", model_schema(Base)),
        ("v2", model_schema(WithOptional)),
        ("v3", model_schema(V3)),
    ]
    report = check_transitive("t", versions, compare_schemas)
    broken = {(p.old, p.new) for p in report.pairs if not p.compatible}
    assert broken == {("v1", "v3"), ("v2", "v3")}


def _field(node: dict[str, object]) -> dict[str, object]:
    return {"type": "object", "properties": {"x": node}, "required": ["x"]}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"type": "string", "x-vendor": 1}, {"type": "string", "x-vendor": 2}),
        ({"type": "array", "items": {}}, {"type": "array", "items": {}, "contains": {}}),
        ({"not": {"type": "string"}}, {"not": {"type": "integer"}}),
        ({"type": "object", "properties": {}}, {"type": "object", "properties": {}, "if": {}}),
        ({"type": "string", "contentEncoding": "base64"}, {"type": "string"}),
    ],
)
def test_unmodelled_keywords_are_unknown_and_break_both_directions(
    old: dict[str, object], new: dict[str, object]
) -> None:
    found = diff_schemas(_field(old), _field(new))
    assert [c.kind for c in found] == [ChangeKind.UNKNOWN], found
    assert found[0].breaks_backward
    assert found[0].breaks_forward
    assert found[0].path == "/x"


def test_annotations_are_not_changes() -> None:
    old = _field({"type": "string", "title": "X", "description": "a", "examples": ["a"]})
    new = _field({"type": "string", "title": "Y", "default": "b", "deprecated": True})
    assert diff_schemas(old, new) == []


def test_a_recursive_ref_that_changed_is_unknown() -> None:
    def tree(leaf: str) -> dict[str, object]:
        return {
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "leaf": {"type": leaf},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    },
                }
            },
            "$ref": "#/$defs/Node",
        }

    assert diff_schemas(tree("string"), tree("string")) == []
    kinds = {c.kind for c in diff_schemas(tree("string"), tree("integer"))}
    assert ChangeKind.UNKNOWN in kinds


def test_an_ambiguous_union_of_changed_models_is_unknown() -> None:
    class A(BaseModel):
        a: int

    class B(BaseModel):
        b: str

    class A2(BaseModel):
        a: str

    class B2(BaseModel):
        b: int

    class Old(BaseModel):
        x: A | B

    class New(BaseModel):
        x: A2 | B2

    found = diff_schemas(model_schema(Old), model_schema(New))
    assert [c.kind for c in found] == [ChangeKind.UNKNOWN]


def test_format_added_breaks_backward() -> None:
    old = _field({"type": "string"})
    new = _field({"type": "string", "format": "date-time"})
    (c,) = diff_schemas(old, new)
    assert (c.kind, c.breaks_backward, c.breaks_forward) == (ChangeKind.FORMAT_ADDED, True, False)
