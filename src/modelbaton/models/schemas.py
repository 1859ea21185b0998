"""Resolve ``baton schema`` arguments to comparable schemas: catalog versions or raw schemas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelbaton.compat import PairReport, diff_schemas, schema_for
from modelbaton.contracts.registry import OutputSchema
from modelbaton.contracts.schemas import ContractRegistry
from modelbaton.errors import ConfigError
from modelbaton.models.catalog import Catalog


@dataclass(frozen=True)
class SchemaRef:
    """A named schema to compare: its raw output schema and, when known, its label set."""

    name: str
    output_schema: OutputSchema
    labels: tuple[str, ...] | None

    @property
    def schema(self) -> dict[str, Any]:
        return schema_for(self.output_schema, self.labels)


def resolve(arg: str, catalog: Catalog | None, contracts: ContractRegistry[Any]) -> SchemaRef:
    """``v2`` (a catalog version) or ``schema:2`` (a raw output schema of ``contracts``)."""
    if arg.startswith("schema:"):
        try:
            version = int(arg.removeprefix("schema:"))
        except ValueError:
            raise ConfigError(f"{arg!r}: expected schema:<integer>") from None
        return SchemaRef(arg, contracts.get(version), None)
    if catalog is None or arg not in catalog.by_version:
        versions = catalog.versions if catalog is not None else []
        known = ", ".join([*versions, *(f"schema:{v}" for v in contracts.versions)])
        raise ConfigError(f"unknown version {arg!r} (known: {known})")
    return catalog_ref(arg, catalog, contracts)


def catalog_ref(version: str, catalog: Catalog, contracts: ContractRegistry[Any]) -> SchemaRef:
    """Catalog ``version``'s raw output schema in ``contracts``, with the label set the catalog
    knows for it (its ``labels``, or its reference model's), if any."""
    entry = catalog.by_version[version]
    labels = entry.config.labels
    if labels is None and entry.reference is not None:
        # Imported here: the reference models pull in scikit-learn, which 'baton --help' and
        # every other command that never compares schemas should not pay for.
        from modelbaton.models.reference import reference_labels

        labels = reference_labels(entry.reference)
    return SchemaRef(version, contracts.get(entry.config.output_schema_version), labels)


def coverage(
    old: SchemaRef, new: SchemaRef, catalog: Catalog | None, canonical: str | None = None
) -> tuple[bool, str]:
    """Whether the registered normalizers absorb the raw differences between two versions
    (``canonical``: the name of the canonical type they produce, when known)."""
    a, b = old.output_schema, new.output_schema
    if a.canonical_version != b.canonical_version:
        return False, (
            f"normalizers map to different canonical versions "
            f"(v{a.canonical_version} and v{b.canonical_version})"
        )
    note = (
        f"covered: {a.normalizer_name} and {b.normalizer_name} both produce the canonical "
        f"{canonical or f'contract v{a.canonical_version}'}, which is all workflows and "
        "downstream code read"
    )
    added = sorted(set(new.labels or ()) - set(old.labels or ()))
    if added and catalog is not None:
        unrouted = [lbl for lbl in added if lbl not in catalog.pipeline.routes]
        note += f"; new labels {added} arrive as keys of scores_by_class"
        if unrouted:
            note += (
                f", and {unrouted} have no route, so they go to the default route "
                f"'{catalog.pipeline.default_route}' until one is added"
            )
    return True, note


def compare(
    old: SchemaRef, new: SchemaRef, catalog: Catalog | None, canonical: str | None = None
) -> PairReport:
    pair = PairReport(old.name, new.name, diff_schemas(old.schema, new.schema))
    if not (pair.backward_ok and pair.forward_ok):
        pair.covered_by_normalizers, pair.coverage = coverage(old, new, catalog, canonical)
    return pair
