"""The comparison itself: one walk over two normalized schemas, recording every change with
the directions it breaks (fail-closed: what is not modelled is UNKNOWN)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelbaton.compat._changes import Change, ChangeKind
from modelbaton.compat._keywords import (
    _BOUNDS,
    _CONTEXTUAL,
    _NOTHING,
    _TYPE_KEYWORDS,
    LABEL_SET_KEY,
    _branches,
    _Normalizer,
    _show,
    _value_key,
)


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
