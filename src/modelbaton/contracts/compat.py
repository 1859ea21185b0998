"""Direction-aware compatibility of JSON Schemas. Pure: no I/O, no Temporal.

The model is the writer and workflow code the reader (Confluent's vocabulary):

- BACKWARD: a new reader reads old data, as when new worker code replays old histories;
- FORWARD: an old reader reads new data, as when in-flight old code receives a new model's output;
- FULL: both; FULL_TRANSITIVE: both, against every earlier version.

Pydantic ignores extra fields by default, so a field added to the writer breaks no reader unless
the reader forbids extras (``additionalProperties: false``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

from modelbaton.contracts.registry import OutputSchema

T = TypeVar("T")

#: Marks schema nodes whose values are class labels, so set changes read as label-set changes.
LABEL_SET_KEY = "x-label-set"
_CONSTRAINTS = {
    # keyword: True when a larger value is stricter
    "minimum": True,
    "exclusiveMinimum": True,
    "minLength": True,
    "minItems": True,
    "maximum": False,
    "exclusiveMaximum": False,
    "maxLength": False,
    "maxItems": False,
}


class ChangeKind(StrEnum):
    TYPE_CHANGED = "type changed"
    TYPE_WIDENED = "type widened"
    TYPE_NARROWED = "type narrowed"
    MAP_TO_ARRAY = "map to array"
    ARRAY_TO_MAP = "array to map"
    FIELD_REMOVED = "field removed"
    OPTIONAL_FIELD_REMOVED = "optional field removed"
    REQUIRED_FIELD_ADDED = "required field added"
    OPTIONAL_FIELD_ADDED = "optional field added"
    FIELD_MADE_OPTIONAL = "field made optional"
    FIELD_MADE_REQUIRED = "field made required"
    ENUM_EXTENDED = "enum extended"
    ENUM_NARROWED = "enum narrowed"
    LABEL_SET_EXTENDED = "label set extended"
    LABEL_SET_NARROWED = "label set narrowed"
    CONSTRAINT_TIGHTENED = "constraint tightened"
    CONSTRAINT_RELAXED = "constraint relaxed"


@dataclass(frozen=True)
class Change:
    """One difference between two schemas, at a JSON pointer into the instance."""

    path: str
    kind: ChangeKind
    breaks_backward: bool
    breaks_forward: bool
    detail: str

    @property
    def breaking(self) -> bool:
        return self.breaks_backward or self.breaks_forward

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind.value,
            "breaks_backward": self.breaks_backward,
            "breaks_forward": self.breaks_forward,
            "detail": self.detail,
        }


class _Walker:
    def __init__(self, old_root: dict[str, Any], new_root: dict[str, Any]) -> None:
        self.old_root, self.new_root = old_root, new_root
        self.changes: list[Change] = []

    def add(self, path: str, kind: ChangeKind, bwd: bool, fwd: bool, detail: str) -> None:
        self.changes.append(Change(path or "/", kind, bwd, fwd, detail))

    @staticmethod
    def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in node and seen < 32:
            ref: str = node["$ref"]
            target: Any = root
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            seen += 1
        return node

    def _unwrap(self, node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Resolve refs and Optional (anyOf with null): return the node and whether null is ok."""
        node = self._resolve(node, root)
        options = node.get("anyOf")
        if isinstance(options, list):
            non_null = [o for o in options if o.get("type") != "null"]
            if len(non_null) == 1 and len(non_null) < len(options):
                inner = self._resolve(non_null[0], root)
                return {**inner, **{k: v for k, v in node.items() if k != "anyOf"}}, True
        return node, node.get("type") == "null"

    @staticmethod
    def _shape(node: dict[str, Any]) -> str:
        kind = node.get("type")
        if kind == "object":
            if node.get("properties"):
                return "object"
            return "map" if isinstance(node.get("additionalProperties"), dict) else "object"
        if kind == "array":
            return "array"
        if isinstance(kind, list):
            return "scalar"
        return "scalar" if kind else "any"

    def walk(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old, old_null = self._unwrap(old, self.old_root)
        new, new_null = self._unwrap(new, self.new_root)
        if old_null != new_null:
            if new_null:
                self.add(path, ChangeKind.TYPE_WIDENED, False, True, "now nullable")
            else:
                self.add(path, ChangeKind.TYPE_NARROWED, True, False, "no longer nullable")
        a, b = self._shape(old), self._shape(new)
        if (a, b) == ("map", "array"):
            self.add(
                path,
                ChangeKind.MAP_TO_ARRAY,
                True,
                True,
                "a dict keyed by name became a positional list: readers of either "
                "shape fail on the other",
            )
            return
        if (a, b) == ("array", "map"):
            self.add(
                path,
                ChangeKind.ARRAY_TO_MAP,
                True,
                True,
                "a positional list became a dict keyed by name",
            )
            return
        if a != b and "any" not in (a, b):
            self.add(
                path,
                ChangeKind.TYPE_CHANGED,
                True,
                True,
                f"{old.get('type')} became {new.get('type')}",
            )
            return
        if a == "object":
            self._object(old, new, path)
        elif a == "map":
            self._labels(old.get("propertyNames", {}), new.get("propertyNames", {}), path, "keys")
            self.walk(old["additionalProperties"], new["additionalProperties"], path + "/*")
        elif a == "array":
            self._array_bounds(old, new, path)
            self.walk(old.get("items", {}), new.get("items", {}), path + "/[]")
        elif a == "scalar":
            self._scalar(old, new, path)

    def _object(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        op, np_ = old.get("properties", {}), new.get("properties", {})
        oreq, nreq = set(old.get("required", [])), set(new.get("required", []))
        old_forbids = old.get("additionalProperties") is False
        new_forbids = new.get("additionalProperties") is False
        for name in op.keys() - np_.keys():
            p = f"{path}/{name}"
            if name in oreq:
                self.add(
                    p,
                    ChangeKind.FIELD_REMOVED,
                    new_forbids,
                    True,
                    "old readers require it; new data no longer has it",
                )
            else:
                self.add(
                    p,
                    ChangeKind.OPTIONAL_FIELD_REMOVED,
                    new_forbids,
                    False,
                    "old readers fall back to the default",
                )
        for name in np_.keys() - op.keys():
            p = f"{path}/{name}"
            if name in nreq:
                self.add(
                    p,
                    ChangeKind.REQUIRED_FIELD_ADDED,
                    True,
                    old_forbids,
                    "new readers require it; old data (and histories) lack it",
                )
            else:
                self.add(
                    p,
                    ChangeKind.OPTIONAL_FIELD_ADDED,
                    False,
                    old_forbids,
                    "ignored by old readers"
                    + (" only if they allowed extras" if old_forbids else ""),
                )
        for name in sorted(op.keys() & np_.keys()):
            p = f"{path}/{name}"
            if name in oreq and name not in nreq:
                self.add(
                    p,
                    ChangeKind.FIELD_MADE_OPTIONAL,
                    False,
                    True,
                    "new data may omit it; old readers require it",
                )
            elif name in nreq and name not in oreq:
                self.add(
                    p,
                    ChangeKind.FIELD_MADE_REQUIRED,
                    True,
                    False,
                    "old data may lack it; new readers require it",
                )
            self.walk(op[name], np_[name], p)

    def _labels(self, old: dict[str, Any], new: dict[str, Any], path: str, where: str) -> None:
        if "enum" not in old or "enum" not in new:
            return
        ov, nv = set(old["enum"]), set(new["enum"])
        label = bool(old.get(LABEL_SET_KEY) or new.get(LABEL_SET_KEY))
        what = "label set" if label else "allowed values"
        suffix = f" ({where})" if where != "values" else ""
        if nv - ov:
            kind = ChangeKind.LABEL_SET_EXTENDED if label else ChangeKind.ENUM_EXTENDED
            self.add(
                path,
                kind,
                False,
                True,
                f"{what}{suffix} gained {sorted(nv - ov)}: readers that switch on the "
                "value do not know it",
            )
        if ov - nv:
            kind = ChangeKind.LABEL_SET_NARROWED if label else ChangeKind.ENUM_NARROWED
            self.add(
                path,
                kind,
                True,
                False,
                f"{what}{suffix} lost {sorted(ov - nv)}: old data may still hold it",
            )

    def _array_bounds(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        self._constraints(old, new, path, ("minItems", "maxItems"))

    def _constraints(
        self, old: dict[str, Any], new: dict[str, Any], path: str, keys: Iterable[str]
    ) -> None:
        for key in keys:
            ov, nv = old.get(key), new.get(key)
            if ov == nv:
                continue
            larger_is_stricter = _CONSTRAINTS[key]
            if ov is None:
                tighter = True
            elif nv is None:
                tighter = False
            else:
                tighter = (nv > ov) == larger_is_stricter
            if tighter:
                self.add(
                    path,
                    ChangeKind.CONSTRAINT_TIGHTENED,
                    True,
                    False,
                    f"{key} {ov} -> {nv}: new readers reject some old values",
                )
            else:
                self.add(
                    path,
                    ChangeKind.CONSTRAINT_RELAXED,
                    False,
                    True,
                    f"{key} {ov} -> {nv}: old readers reject some new values",
                )

    @staticmethod
    def _type_set(node: dict[str, Any]) -> set[str]:
        t = node.get("type")
        types = set(t) if isinstance(t, list) else {t} if t else set()
        return types - {"null"}

    def _scalar(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        ot, nt = self._type_set(old), self._type_set(new)

        def covers(wide: set[str], narrow: set[str]) -> bool:
            # JSON Schema: every integer is a number.
            return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)

        if ot != nt:
            if covers(nt, ot):
                self.add(
                    path,
                    ChangeKind.TYPE_WIDENED,
                    False,
                    True,
                    f"{sorted(ot)} -> {sorted(nt)}: old readers reject the wider values",
                )
            elif covers(ot, nt):
                self.add(
                    path,
                    ChangeKind.TYPE_NARROWED,
                    True,
                    False,
                    f"{sorted(ot)} -> {sorted(nt)}: new readers reject some old values",
                )
            else:
                self.add(path, ChangeKind.TYPE_CHANGED, True, True, f"{sorted(ot)} -> {sorted(nt)}")
                return
        self._labels(old, new, path, "values")
        self._constraints(old, new, path, [k for k in _CONSTRAINTS if "Items" not in k])


def diff_schemas(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``, with the directions it breaks."""
    walker = _Walker(old, new)
    walker.walk(old, new, "")
    return sorted(walker.changes, key=lambda c: (c.path, c.kind.value))


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema a Pydantic model validates (its reading side)."""
    return model.model_json_schema(mode="validation")


def schema_for(output_schema: OutputSchema, labels: Sequence[str] | None) -> dict[str, Any]:
    """A raw output schema, with the label set constrained where the schema carries labels."""
    schema = model_schema(output_schema.raw_model)
    if not labels:
        return schema
    enum = {"enum": sorted(labels), LABEL_SET_KEY: True}
    props: dict[str, Any] = schema.get("properties", {})
    for name, where in output_schema.label_fields.items():
        node = props[name]
        if where == "value":
            props[name] = {**node, **enum}
        elif where == "keys":
            props[name] = {**node, "propertyNames": {"type": "string", **enum}}
        elif where == "items":
            props[name] = {**node, "items": {**node.get("items", {}), **enum}}
    return schema


@dataclass
class PairReport:
    """The changes from one version to another and the verdict per direction."""

    old: str
    new: str
    changes: list[Change]
    covered_by_normalizers: bool = False
    coverage: str = ""

    @property
    def backward_ok(self) -> bool:
        return not any(c.breaks_backward for c in self.changes)

    @property
    def forward_ok(self) -> bool:
        return not any(c.breaks_forward for c in self.changes)

    @property
    def compatible(self) -> bool:
        """Nothing breaks, or every break is absorbed by the normalizers."""
        return (self.backward_ok and self.forward_ok) or self.covered_by_normalizers

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "backward_ok": self.backward_ok,
            "forward_ok": self.forward_ok,
            "full_ok": self.backward_ok and self.forward_ok,
            "covered_by_normalizers": self.covered_by_normalizers,
            "coverage": self.coverage,
            "compatible": self.compatible,
            "changes": [c.as_dict() for c in self.changes],
        }


@dataclass
class TransitiveReport:
    """FULL_TRANSITIVE: every later version against every earlier one."""

    name: str
    pairs: list[PairReport] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        return all(p.compatible for p in self.pairs)


def check_transitive(
    name: str,
    versions: Sequence[T],
    compare: Callable[[T, T], PairReport],
) -> TransitiveReport:
    """FULL_TRANSITIVE: ``compare`` each version with every earlier one, in order."""
    report = TransitiveReport(name)
    for j in range(1, len(versions)):
        for i in range(j):
            report.pairs.append(compare(versions[i], versions[j]))
    return report


def compare_schemas(old: tuple[str, dict[str, Any]], new: tuple[str, dict[str, Any]]) -> PairReport:
    """A pair report over two named schemas, with no normalizer to absorb breaks."""
    return PairReport(old[0], new[0], diff_schemas(old[1], new[1]))
