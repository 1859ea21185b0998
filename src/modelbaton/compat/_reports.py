"""What a pair or a chain of schemas amounts to: BACKWARD, FORWARD and FULL_TRANSITIVE, from
the changes of each pair, and the schemas of Pydantic models and output schemas to compare."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from modelbaton.compat._changes import Change
from modelbaton.compat._keywords import LABEL_SET_KEY
from modelbaton.compat._walker import diff_schemas
from modelbaton.contracts.registry import OutputSchema

T = TypeVar("T")


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
