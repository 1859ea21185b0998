"""Load and validate the model catalog (TOML).

Every error names the file, the entry and the field, because the catalog is edited by hand during
an incident and a vague error then costs minutes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelbaton.contracts import ModelVersionConfig
from modelbaton.contracts.config import CLASSIFY_ATTEMPT_SECONDS
from modelbaton.contracts.registry import CLASSIFICATION
from modelbaton.contracts.schemas import ContractRegistry
from modelbaton.errors import CatalogError, UnknownSchemaVersionError


class PipelineSection(BaseModel):
    """The ``[pipeline]`` table: which version new workflows use, review and routing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: str
    review_threshold: float = Field(default=0.55, ge=0.0, le=1.0)
    review_timeout_seconds: float = Field(default=86400.0, gt=0)
    #: Pinned workflows waiting at review move to the current build (see ClassifyDocumentInput).
    upgrade_at_review: bool = False
    upgrade_check_seconds: float = Field(default=300.0, gt=0)
    default_route: str = Field(default="manual_triage", min_length=1)
    routes: dict[str, str] = Field(default_factory=dict)

    def route_for(self, label: str) -> str:
        return self.routes.get(label, self.default_route)


class ShadowGate(BaseModel):
    """The ``[shadow_gate]`` table: what a shadow must show before its candidate may serve."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_documents: int = Field(default=200, ge=1, description="Documents both arms answered")
    min_agreement: float = Field(
        default=0.85, ge=0.0, le=1.0, description="Lower bound of the agreement's 95 % interval"
    )
    max_error_rate: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Candidate errors over shadowed documents"
    )
    max_schema_errors: int = Field(default=0, ge=0, description="Malformed candidate outputs")
    max_p95_latency_ratio: float = Field(
        default=1.5, gt=0.0, description="Candidate p95 latency over the baseline's"
    )
    accuracy_alpha: float = Field(
        default=0.05,
        gt=0.0,
        lt=1.0,
        description="McNemar significance under which a less accurate candidate fails",
    )
    target_width: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="Agreement interval width the report aims at"
    )


@dataclass(frozen=True)
class CatalogEntry:
    """A catalog model version plus where the bundled server finds its artifact, if it does."""

    config: ModelVersionConfig
    reference: str | None = None


@dataclass(frozen=True)
class Catalog:
    """All model versions of a catalog file, in file order."""

    path: Path
    entries: tuple[CatalogEntry, ...]
    pipeline: PipelineSection
    base_url: str
    by_version: dict[str, CatalogEntry] = field(default_factory=dict, compare=False)
    shadow_gate: ShadowGate = field(default_factory=ShadowGate)

    def get(self, version: str) -> ModelVersionConfig:
        try:
            return self.by_version[version].config
        except KeyError:
            known = ", ".join(self.by_version) or "none"
            raise CatalogError(
                f"{self.path}: no model version '{version}' (known: {known})"
            ) from None

    def extended(self, *configs: ModelVersionConfig) -> Catalog:
        """This catalog plus ``configs`` (tests and benchmarks add scripted endpoints)."""
        entries = self.entries + tuple(CatalogEntry(config=c) for c in configs)
        return Catalog(
            path=self.path,
            entries=entries,
            pipeline=self.pipeline,
            base_url=self.base_url,
            by_version={e.config.version: e for e in entries},
            shadow_gate=self.shadow_gate,
        )

    @property
    def primary(self) -> ModelVersionConfig:
        return self.get(self.pipeline.primary)

    @property
    def versions(self) -> list[str]:
        return [e.config.version for e in self.entries]


_ENTRY_KEYS = set(ModelVersionConfig.model_fields) | {"reference"}


T = TypeVar("T", bound=BaseModel)


def _err(path: Path, where: str, msg: str) -> CatalogError:
    return CatalogError(f"{path}: {where}: {msg}")


#: The tables a catalog may have.
_TOP_LEVEL_KEYS = frozenset({"server", "pipeline", "models", "shadow_gate"})


def _entry(
    path: Path, idx: int, raw: Any, base_url: str, contracts: ContractRegistry[Any]
) -> CatalogEntry:
    where = f"[[models]] entry {idx + 1}"
    if not isinstance(raw, Mapping):
        raise _err(path, where, "must be a table")
    if "version" in raw:
        where += f" (version {raw['version']!r})"
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise _err(path, where, f"unknown field(s) {unknown}")
    data = dict(raw)
    reference = data.pop("reference", None)
    if reference is not None and not isinstance(reference, str):
        raise _err(path, where, f"field 'reference': expected a string, got {reference!r}")
    endpoint = data.get("endpoint")
    if isinstance(endpoint, str) and not endpoint.startswith(("http://", "https://")):
        data["endpoint"] = urljoin(base_url.rstrip("/") + "/", endpoint.lstrip("/"))
    try:
        config = ModelVersionConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        fld = ".".join(str(p) for p in first["loc"]) or "<entry>"
        raise _err(path, where, f"field '{fld}': {first['msg']}") from None
    budget = config.timeout_seconds + config.connect_timeout_seconds
    if budget > CLASSIFY_ATTEMPT_SECONDS:
        raise _err(
            path,
            where,
            f"field 'timeout_seconds': timeout_seconds + connect_timeout_seconds is {budget:g} s, "
            f"more than one classify attempt may take ({CLASSIFY_ATTEMPT_SECONDS:g} s)",
        )
    try:
        contracts.get(config.output_schema_version)
    except UnknownSchemaVersionError as exc:
        raise _err(path, where, f"field 'output_schema_version': {exc}") from None
    return CatalogEntry(config=config, reference=reference)


def _table(path: Path, where: str, model: type[T], raw: Mapping[str, Any]) -> T:
    """A top-level table validated as ``model``; the error names the table and the field."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        fld = ".".join(str(p) for p in first["loc"]) or "<table>"
        raise _err(path, where, f"field '{fld}': {first['msg']}") from None


def parse_catalog(
    path: Path,
    doc: Mapping[str, Any],
    base_url: str | None = None,
    contracts: ContractRegistry[Any] | None = None,
) -> Catalog:
    """Validate an already-decoded catalog document; each model's output schema version must be
    registered in ``contracts`` (the project's; default the reference classification's)."""
    unknown = sorted(set(doc) - _TOP_LEVEL_KEYS)
    if unknown:
        # A misspelt table (``[pipline]``) would otherwise be silently ignored.
        raise _err(
            path,
            "top level",
            f"unknown key(s) {unknown} (allowed: {', '.join(sorted(_TOP_LEVEL_KEYS))})",
        )
    server = doc.get("server", {})
    if not isinstance(server, Mapping):
        raise _err(path, "[server]", "must be a table")
    url = base_url or server.get("base_url") or "http://127.0.0.1:8601"
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _err(path, "[server]", f"field 'base_url': expected an http(s) URL, got {url!r}")
    models = doc.get("models")
    if not isinstance(models, list) or not models:
        raise _err(path, "[[models]]", "at least one model version is required")
    registry = contracts if contracts is not None else CLASSIFICATION
    entries = tuple(_entry(path, i, m, url, registry) for i, m in enumerate(models))
    by_version: dict[str, CatalogEntry] = {}
    for i, e in enumerate(entries):
        if e.config.version in by_version:
            raise _err(path, f"[[models]] entry {i + 1}", f"duplicate version {e.config.version!r}")
        by_version[e.config.version] = e
    raw_pipeline = doc.get("pipeline")
    if not isinstance(raw_pipeline, Mapping):
        raise _err(path, "[pipeline]", "table is required (at least 'primary')")
    pipeline = _table(path, "[pipeline]", PipelineSection, raw_pipeline)
    if pipeline.primary not in by_version:
        raise _err(
            path,
            "[pipeline]",
            f"field 'primary': {pipeline.primary!r} is not a catalog version "
            f"(known: {', '.join(by_version)})",
        )
    raw_gate = doc.get("shadow_gate", {})
    if not isinstance(raw_gate, Mapping):
        raise _err(path, "[shadow_gate]", "must be a table")
    gate = _table(path, "[shadow_gate]", ShadowGate, raw_gate)
    return Catalog(
        path=path,
        entries=entries,
        pipeline=pipeline,
        base_url=url,
        by_version=by_version,
        shadow_gate=gate,
    )


def load_catalog(
    path: Path, base_url: str | None = None, contracts: ContractRegistry[Any] | None = None
) -> Catalog:
    """Read and validate a catalog file; ``base_url`` overrides ``[server].base_url``; output
    schema versions are checked against ``contracts`` (default: the reference pipeline's)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    return parse_catalog(path, doc, base_url, contracts)
