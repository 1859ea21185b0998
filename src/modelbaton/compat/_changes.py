"""The vocabulary of a schema diff: each change's kind and the directions it breaks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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
