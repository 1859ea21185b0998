"""One exception tree for the whole toolkit.

Every error modelbaton raises on purpose derives from :class:`ModelBatonError`, so callers can
catch the family in one place. Activities convert these into Temporal ``ApplicationError`` with
``type`` set to the class name (see ``modelbaton.pipeline.activities``), so workflow code and
operators see the same names.
"""

from __future__ import annotations


class ModelBatonError(Exception):
    """Root of every error modelbaton raises deliberately."""


class ConfigError(ModelBatonError):
    """A configuration value is invalid; the message names the source and the field."""


class CatalogError(ConfigError):
    """The model catalog file is invalid; the message names the file, the entry and the field."""


class UnknownSchemaVersionError(ModelBatonError):
    """An output schema version is not registered; register it in ``contracts.registry``."""


class ModelOutputError(ModelBatonError):
    """A model returned output that violates its declared raw schema or an invariant.

    This is permanent for the document: retrying the same input on the same model gives the same
    output, so activities raise it as non-retryable.
    """

    def __init__(self, message: str, *, field: str, schema_version: int | None) -> None:
        self.field = field
        self.schema_version = schema_version
        where = f"output schema v{schema_version}" if schema_version is not None else "output"
        super().__init__(f"{where}: field '{field}': {message}")


class ModelEndpointError(ModelBatonError):
    """Calling a model endpoint failed.

    ``retryable`` is False for client errors (4xx: the request itself is wrong, so a retry cannot
    help) and True for server errors, timeouts and connection failures.
    """

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        self.retryable = retryable
        self.status_code = status_code
        super().__init__(message)


class DocumentRejectedError(ModelBatonError):
    """A document was refused before anything was started for it (empty, too large, unreadable)."""


class StackError(ModelBatonError):
    """The embedded stack (dev server, model server, workers) could not be started or reached."""


class PortInUseError(StackError):
    """A port the stack needs is held by a process the stack did not start (a usage error)."""


class RolloutError(ModelBatonError):
    """A rollout change was refused or could not be made; the message says why and what to do."""


class SupersededRunError(ModelBatonError):
    """A run of a document tried to write its record after a later run of that document (a
    terminate-and-restart) had started: the later run's record stands, so the write is refused.
    Permanent: the run is stale, and retrying cannot make it current."""


class UnreachableError(StackError):
    """A part the command needs does not answer: Temporal, or no worker polls a model's pool."""
