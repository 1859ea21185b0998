"""A contracts registry that users declare in their own code: raw output schemas per version and
the normalizers that map each onto the user's one canonical type.

Pure (no I/O, no Temporal): activities call :meth:`ContractRegistry.normalize` before anything
leaves them, so no raw model format ever reaches workflow history; ``baton schema check`` and
preflight read the same registry.

    contracts = ContractRegistry("invoice", canonical=Invoice)

    @contracts.schema(1, InvoiceV1)
    def from_v1(raw: InvoiceV1, model_version: str) -> Invoice: ...

A version registered twice is an error naming the registry and the version, at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from modelbaton.errors import ConfigError, ModelOutputError, UnknownSchemaVersionError

C = TypeVar("C", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

#: A normalizer reads a validated raw output (and whatever context the registry's user passes,
#: e.g. the model version or its catalog entry) and returns the canonical result.
Normalizer = Callable[..., Any]


class DuplicateSchemaError(ConfigError):
    """A registry was given the same output schema version twice."""


@dataclass(frozen=True)
class OutputSchema:
    """One registered raw output schema version."""

    version: int
    raw_model: type[BaseModel]
    normalizer: Normalizer
    #: Fields that carry class labels: the label itself ("value"), a dict's keys ("keys") or a
    #: list's items ("items"). The compatibility checker constrains them to a model's label set.
    #: Empty for contracts without labels.
    label_fields: Mapping[str, str] = field(default_factory=dict)
    canonical_version: int = 1

    @property
    def normalizer_name(self) -> str:
        return getattr(self.normalizer, "__qualname__", repr(self.normalizer))


class ContractRegistry(Generic[C]):
    """The raw schema versions of one model output contract and their normalizers to ``canonical``.

    ``name`` appears in every error, so a project with several registries reads which one.
    """

    def __init__(
        self,
        name: str,
        *,
        canonical: type[C],
        canonical_versions: Mapping[int, type[BaseModel]] | None = None,
    ) -> None:
        if not name:
            raise ConfigError("a contracts registry needs a name")
        self.name = name
        self.canonical = canonical
        #: Every version the canonical type has had, oldest first, since histories hold each of
        #: them (``schema check`` requires them FULL_TRANSITIVE); default: ``canonical`` alone.
        self.canonical_versions: Mapping[int, type[BaseModel]] = (
            canonical_versions if canonical_versions is not None else {1: canonical}
        )
        self._schemas: dict[int, OutputSchema] = {}

    def __repr__(self) -> str:
        return f"ContractRegistry({self.name!r}, versions={sorted(self._schemas)})"

    def register(
        self,
        version: int,
        raw_model: type[BaseModel],
        normalizer: Normalizer,
        *,
        label_fields: Mapping[str, str] | None = None,
        canonical_version: int = 1,
    ) -> OutputSchema:
        """Register raw schema ``version``; registering a version twice is refused."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(
                f"contracts {self.name!r}: output schema version must be an integer >= 1, "
                f"got {version!r}"
            )
        if not (isinstance(raw_model, type) and issubclass(raw_model, BaseModel)):
            raise ConfigError(
                f"contracts {self.name!r}: output schema v{version}: the raw schema must be a "
                f"pydantic model class, got {raw_model!r}"
            )
        if not callable(normalizer):
            raise ConfigError(
                f"contracts {self.name!r}: output schema v{version}: normalizer is not callable"
            )
        existing = self._schemas.get(version)
        if existing is not None:
            raise DuplicateSchemaError(
                f"contracts {self.name!r}: output schema v{version} is registered twice "
                f"({existing.raw_model.__name__} and {raw_model.__name__})"
            )
        entry = OutputSchema(
            version, raw_model, normalizer, dict(label_fields or {}), canonical_version
        )
        self._schemas[version] = entry
        return entry

    def schema(
        self,
        version: int,
        raw_model: type[R],
        *,
        label_fields: Mapping[str, str] | None = None,
    ) -> Callable[[Callable[..., C]], Callable[..., C]]:
        """Decorator form of :meth:`register` for a normalizer function."""

        def decorate(fn: Callable[..., C]) -> Callable[..., C]:
            self.register(version, raw_model, fn, label_fields=label_fields)
            return fn

        return decorate

    # -- reading ---------------------------------------------------------------------------------

    @property
    def schemas(self) -> Mapping[int, OutputSchema]:
        """Every registered version (live: a later registration shows here)."""
        return self._schemas

    @property
    def versions(self) -> list[int]:
        return sorted(self._schemas)

    def __contains__(self, version: object) -> bool:
        return version in self._schemas

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._schemas))

    def __len__(self) -> int:
        return len(self._schemas)

    def get(self, version: int) -> OutputSchema:
        """The registered schema, or :class:`UnknownSchemaVersionError` naming the known ones."""
        try:
            return self._schemas[version]
        except KeyError:
            known = ", ".join(str(v) for v in sorted(self._schemas)) or "none"
            raise UnknownSchemaVersionError(
                f"output schema version {version} is not registered in contracts "
                f"{self.name!r} (known: {known}); register it with "
                f"{self.name}.register({version}, RawModel, normalizer)"
            ) from None

    def parse(self, version: int, payload: Mapping[str, Any]) -> BaseModel:
        """Validate a decoded model response against raw schema ``version``."""
        schema = self.get(version)
        try:
            return schema.raw_model.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<root>"
            raise ModelOutputError(first["msg"], field=where, schema_version=version) from None

    def normalize(self, version: int, payload: Mapping[str, Any] | BaseModel, *context: Any) -> C:
        """Parse (if needed) and normalize a raw output of ``version``; ``context`` goes to the
        normalizer after the raw output. A result that is not the canonical type is refused."""
        schema = self.get(version)
        raw = payload if isinstance(payload, BaseModel) else self.parse(version, payload)
        if not isinstance(raw, schema.raw_model):
            raise ModelOutputError(
                f"expected {schema.raw_model.__name__}, got {type(raw).__name__}",
                field="<root>",
                schema_version=version,
            )
        result = schema.normalizer(raw, *context)
        if not isinstance(result, self.canonical):
            raise ConfigError(
                f"contracts {self.name!r}: the normalizer of output schema v{version} "
                f"({schema.normalizer_name}) returned {type(result).__name__}, not "
                f"{self.canonical.__name__}"
            )
        return result
