"""Direction-aware compatibility of JSON Schemas. Pure: no I/O, no Temporal.

The model is the writer and workflow code the reader (Confluent's vocabulary):

- BACKWARD: a new reader reads old data, as when new worker code replays old histories;
- FORWARD: an old reader reads new data, as when in-flight old code receives a new model's output;
- FULL: both; FULL_TRANSITIVE: both, against every earlier version.

The checker fails closed. Every keyword is either modelled (it has a change kind with a direction),
on the :data:`ANNOTATIONS` allow-list (it cannot change which instances validate), or reported as
:attr:`ChangeKind.UNKNOWN`, which breaks both directions. A shape it cannot compare (an ambiguous
union, a recursive ``$ref``, a keyword whose meaning depends on its siblings) is UNKNOWN too.

Assumptions, stated once:

- Writers emit only the fields their schema declares (they are Pydantic models or models checked
  against one), and Pydantic readers ignore extra fields by default. So a field added to the writer
  breaks no reader unless the reader forbids extras (``additionalProperties: false``), and a
  reader's optional field cannot meet a value of another type under the same name.
- Each keyword is compared on its own. Where two keywords interact (``minimum`` replaced by
  ``exclusiveMinimum``, ``int | float`` narrowed to ``float``) the report may name a break the pair
  does not really have: that over-reports, it never under-reports.
- Identical subschemas (after resolving ``$ref`` and dropping annotations) are compatible.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

from modelbaton.contracts.registry import OutputSchema

T = TypeVar("T")

#: Marks schema nodes whose values are class labels, so set changes read as label-set changes.
LABEL_SET_KEY = "x-label-set"

#: Keywords that never change which instances validate, so they are dropped before comparing.
#: ``title``, ``description``, ``examples``, ``$comment``: documentation. ``default``: a reader
#: fills it in for a missing field, but whether a field may be missing is ``required``, compared
#: on its own. ``deprecated``, ``readOnly``, ``writeOnly``: hints, not assertions (JSON Schema
#: 2020-12, meta-data vocabulary). ``$schema``: Pydantic always emits the same dialect. ``$defs``,
#: ``definitions``: only reached through ``$ref``, which is resolved first.
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$defs",
        "definitions",
    }
)

#: Keywords whose meaning depends on sibling keywords: present in a subschema that changed, they
#: are UNKNOWN even when their own value did not change.
_CONTEXTUAL = frozenset(
    {
        "$ref",
        "$dynamicRef",
        "$recursiveRef",
        "$id",
        "$anchor",
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependencies",
        "prefixItems",
        "additionalItems",
        "contains",
        "minContains",
        "maxContains",
        "discriminator",
    }
)

#: Keywords that apply only to instances of one JSON type.
_TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format", "contentEncoding"}),
    "number": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "array": frozenset(
        {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"}
        | {"contains", "minContains", "maxContains", "unevaluatedItems"}
    ),
    "object": frozenset(
        {"properties", "required", "additionalProperties", "propertyNames", "patternProperties"}
        | {"minProperties", "maxProperties", "dependentRequired", "dependentSchemas"}
        | {"unevaluatedProperties", "dependencies"}
    ),
}
_TYPE_KEYWORDS["integer"] = _TYPE_KEYWORDS["number"]
_ALL_TYPED = frozenset().union(*_TYPE_KEYWORDS.values())

#: Subschema-valued keywords, by how they hold subschemas.
_ONE_SCHEMA = frozenset(
    {"items", "additionalProperties", "propertyNames", "not", "if", "then", "else", "contains"}
    | {"additionalItems", "unevaluatedItems", "unevaluatedProperties"}
)
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})

_BOUNDS = {
    # keyword: True when a larger value is stricter
    "minimum": True,
    "exclusiveMinimum": True,
    "minLength": True,
    "minItems": True,
    "minProperties": True,
    "maximum": False,
    "exclusiveMaximum": False,
    "maxLength": False,
    "maxItems": False,
    "maxProperties": False,
}
#: The schema no instance satisfies (the boolean schema ``false``).
_NOTHING: dict[str, Any] = {"not": {}}


class ChangeKind(StrEnum):
    UNKNOWN = "unknown"
    TYPE_CHANGED = "type changed"
    TYPE_WIDENED = "type widened"
    TYPE_NARROWED = "type narrowed"
    UNION_WIDENED = "union widened"
    UNION_NARROWED = "union narrowed"
    MAP_TO_ARRAY = "map to array"
    ARRAY_TO_MAP = "array to map"
    FIELD_REMOVED = "field removed"
    OPTIONAL_FIELD_REMOVED = "optional field removed"
    REQUIRED_FIELD_ADDED = "required field added"
    OPTIONAL_FIELD_ADDED = "optional field added"
    FIELD_MADE_OPTIONAL = "field made optional"
    FIELD_MADE_REQUIRED = "field made required"
    EXTRAS_FORBIDDEN = "extra fields forbidden"
    EXTRAS_ALLOWED = "extra fields allowed"
    CONST_CHANGED = "const changed"
    ENUM_EXTENDED = "enum extended"
    ENUM_NARROWED = "enum narrowed"
    ENUM_CHANGED = "enum changed"
    LABEL_SET_EXTENDED = "label set extended"
    LABEL_SET_NARROWED = "label set narrowed"
    LABEL_SET_CHANGED = "label set changed"
    PATTERN_ADDED = "pattern added"
    PATTERN_REMOVED = "pattern removed"
    PATTERN_CHANGED = "pattern changed"
    FORMAT_ADDED = "format added"
    FORMAT_REMOVED = "format removed"
    FORMAT_CHANGED = "format changed"
    CONSTRAINT_TIGHTENED = "constraint tightened"
    CONSTRAINT_RELAXED = "constraint relaxed"
    CONSTRAINT_CHANGED = "constraint changed"


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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"  # JSON Schema: 1.0 is an integer
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fits(value: Any, kind: str) -> bool:
    found = _json_type(value)
    return found == kind or (found == "integer" and kind == "number")


def _value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _show(value: Any, absent: bool = False) -> str:
    if absent:
        return "absent"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _conjoin(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Both schemas at once: merged when no keyword disagrees, else an (unmodelled) ``allOf``."""
    if any(k in a and a[k] != v for k, v in b.items()):
        return {"allOf": [a, b]}
    return {**a, **b}


class _Normalizer:
    """Resolves local ``$ref`` (leaving recursive or foreign ones in place), drops annotations,
    turns boolean schemas into objects and folds a one-element ``allOf`` into its node."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.stack: list[str] = []

    def node(self, schema: Any) -> dict[str, Any]:
        if schema is True:
            return {}
        if schema is False:
            return dict(_NOTHING)
        if not isinstance(schema, dict):
            return {"x-not-a-schema": schema}
        out: dict[str, Any] = {}
        for k, v in schema.items():
            if k in ANNOTATIONS or k == "$ref":
                continue
            if k in _ONE_SCHEMA:
                out[k] = self.node(v)
            elif k in _SCHEMA_MAPS and isinstance(v, dict):
                out[k] = {name: self.node(sub) for name, sub in v.items()}
            elif k in _SCHEMA_LISTS and isinstance(v, list):
                out[k] = [self.node(sub) for sub in v]
            else:
                out[k] = v
        if "$ref" in schema:
            out = self._ref(schema["$ref"], out)
        all_of = out.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            out = _conjoin({k: v for k, v in out.items() if k != "allOf"}, all_of[0])
        return out

    def _ref(self, ref: Any, siblings: dict[str, Any]) -> dict[str, Any]:
        # Left in place, "$ref" is contextual, so UNKNOWN wherever its subschema changed. The tag
        # keeps two equal "$ref" strings from looking equal when their targets differ.
        unresolved = {**siblings, "$ref": ref, "x-ref-target": f"unresolved in {id(self)}"}
        if not isinstance(ref, str) or not ref.startswith("#"):
            return unresolved
        target: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return unresolved
            target = target[part]
        if ref in self.stack:  # recursive: not expanded, compared by its target's text
            return {**siblings, "$ref": ref, "x-ref-target": _value_key(target)}
        self.stack.append(ref)
        try:
            resolved = self.node(target)
        finally:
            self.stack.pop()
        return _conjoin(resolved, siblings)


def _for_type(node: dict[str, Any], kind: str) -> dict[str, Any]:
    """``node`` without the keywords of other types (JSON Schema ignores those for ``kind``)."""
    own = _TYPE_KEYWORDS.get(kind, frozenset())
    return {k: v for k, v in node.items() if k not in _ALL_TYPED or k in own}


def _branches(node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The alternatives a node accepts, one per JSON type: ``("any", node)`` when untyped."""
    for keyword in ("anyOf", "oneOf"):
        options = node.get(keyword)
        if isinstance(options, list):
            rest = {k: v for k, v in node.items() if k != keyword}
            found: list[tuple[str, dict[str, Any]]] = []
            for option in options:
                found.extend(_branches(_conjoin(rest, option)))
            return found
    values: list[Any] | None = None
    if isinstance(node.get("enum"), list):
        values = list(node["enum"])
    if "const" in node:
        const = _value_key(node["const"])
        values = (
            [node["const"]] if values is None else [v for v in values if _value_key(v) == const]
        )
    rest = {k: v for k, v in node.items() if k not in ("enum", "const")}
    declared = node.get("type")
    if isinstance(declared, str):
        types = [declared]
    elif isinstance(declared, list) and all(isinstance(t, str) for t in declared):
        types = list(dict.fromkeys(declared))
    elif declared is None:
        types = []
    else:
        return [("any", node)]  # a malformed "type": compared keyword by keyword, so UNKNOWN
    if values is not None:
        types = types or list(dict.fromkeys(_json_type(v) for v in values))
        valued = [(t, [v for v in values if _fits(v, t)]) for t in types]
        return [(t, {**_for_type(rest, t), "type": t, "enum": vs}) for t, vs in valued if vs]
    if not types:
        return [("any", rest)]
    return [(t, {**_for_type(rest, t), "type": t}) for t in types]


def _is_map(node: dict[str, Any]) -> bool:
    return "properties" not in node


class _Walker:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def add(self, path: str, kind: ChangeKind, bwd: bool, fwd: bool, detail: str) -> None:
        self.changes.append(Change(path or "/", kind, bwd, fwd, detail))

    def unknown(self, path: str, detail: str) -> None:
        self.add(
            path, ChangeKind.UNKNOWN, True, True, detail + ": not modelled, so assumed breaking"
        )

    def walk(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        if old == new:
            return
        if ("oneOf" in old and "anyOf" in new) or ("anyOf" in old and "oneOf" in new):
            self.unknown(path, "a union switched between anyOf and oneOf")
        self._union(_branches(old), _branches(new), path)

    def _union(
        self,
        old: list[tuple[str, dict[str, Any]]],
        new: list[tuple[str, dict[str, Any]]],
        path: str,
    ) -> None:
        old_any = [n for t, n in old if t == "any"]
        new_any = [n for t, n in new if t == "any"]
        if old_any or new_any:
            if any(old_any + new_any):
                # An untyped node with assertions ("not", "allOf" ...): nothing to compare it by.
                self.unknown(path, "an untyped alternative with assertions")
            elif old_any and not new_any:
                types = sorted({t for t, _ in new})
                self.add(
                    path,
                    ChangeKind.TYPE_NARROWED,
                    True,
                    False,
                    f"any value -> {types}: new readers reject some old values",
                )
            elif new_any and not old_any:
                types = sorted({t for t, _ in old})
                self.add(
                    path,
                    ChangeKind.TYPE_WIDENED,
                    False,
                    True,
                    f"{types} -> any value: old readers reject the wider values",
                )
            return
        old_left, new_left = list(old), list(new)
        for branch in list(old_left):
            if branch in new_left:
                old_left.remove(branch)
                new_left.remove(branch)
        for kind in dict.fromkeys(t for t, _ in old_left):
            a = [b for b in old_left if b[0] == kind]
            b = [b for b in new_left if b[0] == kind]
            if not b:
                continue
            if len(a) == 1 and len(b) == 1:
                self._pair(kind, a[0][1], b[0][1], path)
            else:
                self.unknown(path, f"{len(a)} {kind} alternatives became {len(b)} changed ones")
            old_left = [x for x in old_left if x[0] != kind]
            new_left = [x for x in new_left if x[0] != kind]
        self._numbers(old_left, new_left, path)
        if len(old_left) == 1 and len(new_left) == 1:
            self._replaced(old_left[0], new_left[0], path)
            return
        for kind, _ in old_left:
            self.add(
                path,
                ChangeKind.UNION_NARROWED,
                True,
                False,
                f"no longer accepts {kind}: new readers reject old data of that type",
            )
        for kind, _ in new_left:
            self.add(
                path,
                ChangeKind.UNION_WIDENED,
                False,
                True,
                f"now also accepts {kind}: old readers reject new data of that type",
            )

    def _numbers(
        self,
        old: list[tuple[str, dict[str, Any]]],
        new: list[tuple[str, dict[str, Any]]],
        path: str,
    ) -> None:
        """Pair a lone integer with a lone number: every integer is a number."""
        for narrow, wide, widened in (("integer", "number", True), ("number", "integer", False)):
            a = [b for b in old if b[0] == narrow]
            b = [b for b in new if b[0] == wide]
            if len(a) != 1 or len(b) != 1 or any(x[0] == wide for x in old):
                continue
            if any(x[0] == narrow for x in new):
                continue
            if widened:
                self.add(
                    path,
                    ChangeKind.TYPE_WIDENED,
                    False,
                    True,
                    "['integer'] -> ['number']: old readers reject the wider values",
                )
            else:
                self.add(
                    path,
                    ChangeKind.TYPE_NARROWED,
                    True,
                    False,
                    "['number'] -> ['integer']: new readers reject some old values",
                )
            self._pair("number", a[0][1], b[0][1], path)
            old.remove(a[0])
            new.remove(b[0])

    def _replaced(
        self, old: tuple[str, dict[str, Any]], new: tuple[str, dict[str, Any]], path: str
    ) -> None:
        (a, old_node), (b, new_node) = old, new
        if a == "object" and _is_map(old_node) and b == "array":
            self.add(
                path,
                ChangeKind.MAP_TO_ARRAY,
                True,
                True,
                "a dict keyed by name became a positional list: readers of either "
                "shape fail on the other",
            )
        elif a == "array" and b == "object" and _is_map(new_node):
            self.add(
                path,
                ChangeKind.ARRAY_TO_MAP,
                True,
                True,
                "a positional list became a dict keyed by name",
            )
        else:
            self.add(path, ChangeKind.TYPE_CHANGED, True, True, f"{a} became {b}")

    def _pair(self, kind: str, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        """Two alternatives of the same JSON type."""
        if old == new:
            return
        handled = {"type", "enum", LABEL_SET_KEY}
        self._values(old, new, path)
        if kind in ("integer", "number"):
            handled |= _TYPE_KEYWORDS["number"] - {"multipleOf"}
            self._bounds(old, new, path, _TYPE_KEYWORDS["number"] - {"multipleOf"})
            handled.add("multipleOf")
            self._multiple_of(old, new, path)
        elif kind == "string":
            handled |= {"minLength", "maxLength", "pattern", "format"}
            self._bounds(old, new, path, ("minLength", "maxLength"))
            self._assertion(old, new, path, "pattern")
            self._assertion(old, new, path, "format")
        elif kind == "array":
            handled |= {"items", "minItems", "maxItems", "uniqueItems"}
            self._bounds(old, new, path, ("minItems", "maxItems"))
            self._unique(old, new, path)
            self.walk(old.get("items", {}), new.get("items", {}), path + "/[]")
        elif kind == "object":
            handled |= {"properties", "required", "additionalProperties", "propertyNames"}
            handled |= {"minProperties", "maxProperties"}
            self._object(old, new, path)
        for key in sorted((old.keys() | new.keys()) - handled):
            if key in _CONTEXTUAL or old.get(key) != new.get(key):
                self.unknown(
                    path,
                    f"keyword {key!r} {_show(old.get(key), key not in old)} -> "
                    f"{_show(new.get(key), key not in new)}",
                )

    def _object(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_pn = old.get("propertyNames", {"type": "string"})
        new_pn = new.get("propertyNames", {"type": "string"})
        self.walk(old_pn, new_pn, path)
        self._bounds(old, new, path, ("minProperties", "maxProperties"))
        if _is_map(old) != _is_map(new):
            what = (
                ("a record with named fields", "a map") if _is_map(new) else ("a map", "a record")
            )
            self.add(path, ChangeKind.TYPE_CHANGED, True, True, f"{what[0]} became {what[1]}")
            return
        if _is_map(old):
            self.walk(
                old.get("additionalProperties", {}),
                new.get("additionalProperties", {}),
                path + "/*",
            )
            return
        old_extra, new_extra = (
            old.get("additionalProperties", {}),
            new.get("additionalProperties", {}),
        )
        if old_extra != new_extra:
            if old_extra in ({}, _NOTHING) and new_extra in ({}, _NOTHING):
                forbidden = new_extra == _NOTHING
                self.add(
                    path,
                    ChangeKind.EXTRAS_FORBIDDEN if forbidden else ChangeKind.EXTRAS_ALLOWED,
                    False,
                    False,
                    "breaks only through fields one side declares and the other does not",
                )
            else:
                self.unknown(path, "'additionalProperties' with a schema beside named fields")
        self._fields(old, new, path)

    def _fields(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        op, np_ = old.get("properties", {}), new.get("properties", {})
        oreq, nreq = set(old.get("required", [])), set(new.get("required", []))
        if oreq - op.keys() != nreq - np_.keys():
            self.unknown(path, "'required' names a field outside 'properties'")
        old_forbids = old.get("additionalProperties") == _NOTHING
        new_forbids = new.get("additionalProperties") == _NOTHING
        for name in sorted(op.keys() - np_.keys()):
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
        for name in sorted(np_.keys() - op.keys()):
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

    def _values(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        """Allowed value sets (``enum``, ``const``; class labels when marked)."""
        if "enum" not in old and "enum" not in new:
            return
        label = bool(old.get(LABEL_SET_KEY) or new.get(LABEL_SET_KEY))
        what = "label set" if label else "allowed values"
        if "enum" not in new:
            kind = ChangeKind.LABEL_SET_EXTENDED if label else ChangeKind.ENUM_EXTENDED
            self.add(path, kind, False, True, f"{what} no longer limited: old readers reject more")
            return
        if "enum" not in old:
            kind = ChangeKind.LABEL_SET_NARROWED if label else ChangeKind.ENUM_NARROWED
            self.add(
                path,
                kind,
                True,
                False,
                f"now limited to {_sorted(new['enum'])}: old data may hold other values",
            )
            return
        ov = {_value_key(v): v for v in old["enum"]}
        nv = {_value_key(v): v for v in new["enum"]}
        gained = _sorted([nv[k] for k in nv.keys() - ov.keys()])
        lost = _sorted([ov[k] for k in ov.keys() - nv.keys()])
        if gained and lost:
            if len(ov) == 1 and len(nv) == 1:
                kind, detail = ChangeKind.CONST_CHANGED, f"{lost[0]!r} -> {gained[0]!r}"
            else:
                kind = ChangeKind.LABEL_SET_CHANGED if label else ChangeKind.ENUM_CHANGED
                detail = f"{what} gained {gained} and lost {lost}"
            self.add(path, kind, True, True, detail + ": each side has values the other rejects")
        elif gained:
            kind = ChangeKind.LABEL_SET_EXTENDED if label else ChangeKind.ENUM_EXTENDED
            self.add(
                path,
                kind,
                False,
                True,
                f"{what} gained {gained}: readers that switch on the value do not know it",
            )
        elif lost:
            kind = ChangeKind.LABEL_SET_NARROWED if label else ChangeKind.ENUM_NARROWED
            self.add(path, kind, True, False, f"{what} lost {lost}: old data may still hold it")

    def _bounds(
        self, old: dict[str, Any], new: dict[str, Any], path: str, keys: Iterable[str]
    ) -> None:
        for key in sorted(keys):
            ov, nv = old.get(key), new.get(key)
            if ov == nv:
                continue
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ov, nv))
            if ov is None:
                tighter = True
            elif nv is None:
                tighter = False
            elif numeric:
                tighter = (nv > ov) == _BOUNDS[key]
            else:
                self.add(path, ChangeKind.CONSTRAINT_CHANGED, True, True, f"{key} {ov} -> {nv}")
                continue
            self._tightened(path, tighter, f"{key} {ov} -> {nv}")

    def _tightened(self, path: str, tighter: bool, what: str) -> None:
        if tighter:
            self.add(
                path,
                ChangeKind.CONSTRAINT_TIGHTENED,
                True,
                False,
                f"{what}: new readers reject some old values",
            )
        else:
            self.add(
                path,
                ChangeKind.CONSTRAINT_RELAXED,
                False,
                True,
                f"{what}: old readers reject some new values",
            )

    def _multiple_of(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        ov, nv = old.get("multipleOf"), new.get("multipleOf")
        if ov == nv:
            return
        what = f"multipleOf {ov} -> {nv}"
        if ov is None or nv is None:
            self._tightened(path, ov is None, what)
        elif isinstance(ov, int) and isinstance(nv, int) and ov and nv and nv % ov == 0:
            self._tightened(path, True, what)
        elif isinstance(ov, int) and isinstance(nv, int) and ov and nv and ov % nv == 0:
            self._tightened(path, False, what)
        else:
            self.add(path, ChangeKind.CONSTRAINT_CHANGED, True, True, what)

    def _unique(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        ov, nv = bool(old.get("uniqueItems")), bool(new.get("uniqueItems"))
        if ov != nv:
            self._tightened(path, nv, f"uniqueItems {ov} -> {nv}")

    def _assertion(self, old: dict[str, Any], new: dict[str, Any], path: str, key: str) -> None:
        """``pattern`` or ``format``: a reader that gains one rejects some old values."""
        kinds = {
            "pattern": (
                ChangeKind.PATTERN_ADDED,
                ChangeKind.PATTERN_REMOVED,
                ChangeKind.PATTERN_CHANGED,
            ),
            "format": (
                ChangeKind.FORMAT_ADDED,
                ChangeKind.FORMAT_REMOVED,
                ChangeKind.FORMAT_CHANGED,
            ),
        }[key]
        ov, nv = old.get(key), new.get(key)
        if ov == nv:
            return
        if ov is None:
            self.add(path, kinds[0], True, False, f"{key} {nv!r}: new readers reject old values")
        elif nv is None:
            self.add(
                path, kinds[1], False, True, f"{key} {ov!r} dropped: old readers reject new values"
            )
        else:
            self.add(path, kinds[2], True, True, f"{key} {ov!r} -> {nv!r}")


def _sorted(values: Iterable[Any]) -> list[Any]:
    return sorted(values, key=_value_key)


def diff_schemas(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``, with the directions it breaks."""
    walker = _Walker()
    walker.walk(_Normalizer(old).node(old), _Normalizer(new).node(new), "")
    return sorted(walker.changes, key=lambda c: (c.path, c.kind.value, c.detail))


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
