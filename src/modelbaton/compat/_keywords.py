"""JSON Schema keywords as the checker sees them (modelled, annotations, contextual, typed,
subschema-valued) and the normalizer that resolves ``$ref`` and drops annotations."""

from __future__ import annotations

import json
from typing import Any

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
