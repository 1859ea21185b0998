"""The project config: which workflows, activities, contracts, catalog, queues and histories make
up a user's pipeline. Read from ``modelbaton.toml`` (top-level keys) or from ``[tool.modelbaton]``
in ``pyproject.toml``::

    [tool.modelbaton]
    name = "invoices"
    task_queue = "invoices"           # the pipeline's queue; pools are named from it
    python_path = ["."]               # folders (relative to this file) to import from
    workflows = ["invoice_extraction.workflow:InvoiceWorkflow"]
    activity_modules = ["invoice_extraction.activities"]
    contracts = "invoice_extraction.contracts:CONTRACTS"
    catalog = "catalog.toml"                          # optional
    histories = "histories"                           # committed histories replay-check reads
    patches = ["invoice-assigned-model"]              # optional; else found in the workflow code
    data_converter = "invoice_extraction.codec:CONVERTER"  # optional: what the workers run with,
    plugins = ["invoice_extraction.codec:PLUGIN"]          # so that replay-check replays as
    passthrough_modules = ["numpy"]                        # they do

Every ``baton`` command that reads workflows finds its project the same way
(:func:`resolve_project`): ``--project PATH``, else ``MODELBATON_PROJECT``, else a config in the
working folder or a parent (up to the repository root), else the reference document-classification
pipeline built in (:func:`reference_project`), so nothing changes for a user without a config.

Every error names the file and the key, in one line (``baton`` exits 2 on it).
"""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelbaton.contracts.schemas import ContractRegistry
from modelbaton.errors import ConfigError
from modelbaton.settings import Settings

if TYPE_CHECKING:
    from modelbaton.rollout.spec import PipelineSpec

CONFIG_FILE = "modelbaton.toml"
PYPROJECT = "pyproject.toml"
#: The environment variable naming the project config when ``--project`` is not given.
PROJECT_ENV = "MODELBATON_PROJECT"
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ProjectConfigError(ConfigError):
    """The project config is invalid; the message names the file and the key."""


class PatchEntry(BaseModel):
    """One patch id of the project, with what ``baton patches`` needs to judge it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    #: The workflow type whose code calls it (default: the project's only workflow, or the one
    #: whose code names it).
    workflow_type: str | None = None
    description: str = ""
    #: When the release that calls ``deprecate_patch`` for it was deployed.
    deprecated_since: datetime | None = None


class ProjectSection(BaseModel):
    """The keys of the config, as written (paths relative to the config file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)
    workflows: list[str] = Field(min_length=1)
    activity_modules: list[str] = Field(default_factory=list)
    contracts: str = Field(min_length=1)
    catalog: str | None = None
    histories: str | None = None
    python_path: list[str] = Field(default_factory=list)
    #: Patch ids, as ids or tables; absent: ``baton patches`` finds them in the workflow code.
    patches: list[str | PatchEntry] | None = None
    #: Output schema versions the workflow code calls (its ``ModelRoute``'s); absent: every
    #: version of the contracts registry. Rollback scenario C and preflight read it.
    schema_versions: list[int] | None = None
    #: The Keyword search attribute the workflow sets while a person handles a document, and
    #: its value while the document waits for one (``modelbaton.rollout.spec.ReviewMarker``);
    #: absent: no document goes to a person.
    review_attribute: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z_]\w*$")
    review_waiting_value: str = Field(default="pending", min_length=1)
    #: What the project's workers run with, so that ``replay-check`` replays as they do:
    #: ``module:name`` of a ``temporalio.converter.DataConverter`` (default: pydantic's, with
    #: no codec), of each ``temporalio.worker.Plugin`` instance (interceptors, converters), and
    #: the modules the workflow sandbox passes through.
    data_converter: str | None = None
    plugins: list[str] = Field(default_factory=list)
    passthrough_modules: list[str] = Field(default_factory=list)

    def patch_entries(self) -> list[PatchEntry] | None:
        if self.patches is None:
            return None
        return [PatchEntry(id=p) if isinstance(p, str) else p for p in self.patches]


@dataclass(frozen=True)
class Project:
    """A loaded project: its config and every object it names, imported and checked."""

    path: Path
    section: ProjectSection
    workflows: tuple[type, ...]
    activity_modules: tuple[ModuleType, ...]
    contracts: ContractRegistry[Any]
    #: How it was found: ``--project``, ``MODELBATON_PROJECT``, ``found`` (working folder or a
    #: parent) or ``built-in`` (the reference pipeline's defaults).
    source: str = "--project"

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"

    def key(self, name: str) -> str:
        """``name`` as the config spells it (``tool.modelbaton.`` in a pyproject.toml)."""
        return f"tool.modelbaton.{name}" if self.path.name == PYPROJECT else name

    def error(self, key: str, message: str) -> ProjectConfigError:
        """One line naming this project's file and ``key``."""
        return _fail(self.path, self.key(key), message)

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def task_queue(self) -> str:
        return self.section.task_queue

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def workflow_paths(self) -> list[str]:
        return list(self.section.workflows)

    @property
    def workflow_types(self) -> list[str]:
        """The workflow type names the project's classes register under."""
        from temporalio import workflow

        return [workflow._Definition.must_from_class(c).name or "" for c in self.workflows]

    def spec(self) -> PipelineSpec:
        """The pipeline as the rollout tools see it: the first workflow (the one that calls the
        model) with its run method's input type, the contracts, the schema versions its code
        calls, every workflow class (replay) and the patches ``baton patches`` judges. Read once
        per loaded project (finding the patches reads the workflow source)."""
        return self._spec

    @cached_property
    def _spec(self) -> PipelineSpec:
        from temporalio import workflow

        from modelbaton.ops.patches import project_patches
        from modelbaton.rollout.spec import PipelineSpec

        definition = workflow._Definition.must_from_class(self.workflows[0])
        args = definition.arg_types or []
        input_type = args[0] if len(args) == 1 else None
        if not (isinstance(input_type, type) and issubclass(input_type, BaseModel)):
            raise self.error(
                "workflows[0]",
                f"{self.section.workflows[0]}: the rollout tools need its run method to take "
                "one pydantic model (the input with an 'assignment' field)",
            )
        from modelbaton.rollout.spec import ReviewMarker

        versions = self.section.schema_versions
        attribute = self.section.review_attribute
        return PipelineSpec(
            workflow_type=definition.name or "",
            input_type=input_type,
            contracts=self.contracts,
            schema_versions=frozenset(versions if versions is not None else self.contracts),
            workflows=tuple(self.workflow_paths),
            patches=project_patches(self),
            review=(
                ReviewMarker(attribute, self.section.review_waiting_value) if attribute else None
            ),
        )

    @property
    def catalog_path(self) -> Path | None:
        return self.root / self.section.catalog if self.section.catalog else None

    @property
    def histories_path(self) -> Path | None:
        return self.root / self.section.histories if self.section.histories else None


def _config_in(folder: Path) -> Path | None:
    own = folder / CONFIG_FILE
    if own.is_file():
        return own
    py = folder / PYPROJECT
    if py.is_file():
        try:
            data = tomllib.loads(py.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if "modelbaton" in data.get("tool", {}):
            return py
    return None


def find_config(start: Path) -> Path | None:
    """``modelbaton.toml``, or a ``pyproject.toml`` with ``[tool.modelbaton]``, in ``start`` or
    the nearest parent folder that has one, up to the repository root (a folder with ``.git``)."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        found = _config_in(folder)
        if found is not None:
            return found
        if (folder / ".git").exists():
            return None
    return None


def _fail(path: Path, key: str, message: str) -> ProjectConfigError:
    return ProjectConfigError(f"{path}: {key}: {message}")


def read_section(path: Path) -> ProjectSection:
    """Parse and validate the keys of ``path``; nothing is imported yet."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectConfigError(f"{path}: no such project config") from None
    except OSError as exc:
        raise ProjectConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectConfigError(f"{path}: not valid TOML: {exc}") from None
    prefix = ""
    if path.name == PYPROJECT:
        data = data.get("tool", {}).get("modelbaton")
        prefix = "tool.modelbaton."
        if not isinstance(data, dict):
            raise ProjectConfigError(f"{path}: no [tool.modelbaton] table")
    try:
        section = ProjectSection.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "<root>"
        message = "required key is missing" if first["type"] == "missing" else first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown key (known: {', '.join(ProjectSection.model_fields)})"
        raise _fail(path, prefix + key, message) from None
    if not _QUEUE.match(section.task_queue):
        raise _fail(
            path, prefix + "task_queue", f"{section.task_queue!r} is not a valid task queue name"
        )
    return section


def _import(path: Path, key: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise _fail(path, key, f"module {module_name!r} not found ({exc})") from None
    except ConfigError as exc:
        # A registry with a schema version twice fails while its module is imported.
        raise _fail(path, key, str(exc)) from None
    except Exception as exc:
        raise _fail(
            path, key, f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None


def _object(path: Path, key: str, ref: str) -> Any:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise _fail(path, key, f"{ref!r} is not of the form module:name")
    module = _import(path, key, module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise _fail(path, key, f"module {module_name!r} has no {attr!r}") from None


def load_project(path: Path | None = None) -> Project:
    """Load the config at ``path`` (or found from the working folder) and import what it names."""
    if path is None:
        found = find_config(Path.cwd())
        if found is None:
            raise ProjectConfigError(
                f"no {CONFIG_FILE} or {PYPROJECT} with [tool.modelbaton] in {Path.cwd()} or above"
            )
        path = found
    path = path.resolve() if path.exists() else path
    if path.is_dir():
        path = _config_in(path) or path / CONFIG_FILE
    section = read_section(path)
    return _import_project(path, section)


def _import_project(path: Path, section: ProjectSection, source: str = "--project") -> Project:
    """Import and check what ``section`` names (relative paths from ``path``'s folder)."""
    from temporalio import workflow

    prefix = "tool.modelbaton." if path.name == PYPROJECT else ""
    for i, folder in enumerate(section.python_path):
        full = (path.parent / folder).resolve()
        if not full.is_dir():
            raise _fail(path, f"{prefix}python_path[{i}]", f"{folder!r} is not a folder")
        if str(full) not in sys.path:
            sys.path.insert(0, str(full))
    workflows: list[type] = []
    for i, ref in enumerate(section.workflows):
        key = f"{prefix}workflows[{i}]"
        cls = _object(path, key, ref)
        if not isinstance(cls, type) or workflow._Definition.from_class(cls) is None:
            raise _fail(path, key, f"{ref!r} is not a @workflow.defn class")
        workflows.append(cls)
    names = [workflow._Definition.must_from_class(c).name for c in workflows]
    twice = sorted({n or "" for n in names if names.count(n) > 1})
    if twice:
        raise _fail(path, f"{prefix}workflows", f"workflow type {twice[0]!r} is named twice")
    modules = tuple(
        _import(path, f"{prefix}activity_modules[{i}]", m)
        for i, m in enumerate(section.activity_modules)
    )
    contracts = _object(path, f"{prefix}contracts", section.contracts)
    if not isinstance(contracts, ContractRegistry):
        raise _fail(
            path,
            f"{prefix}contracts",
            f"{section.contracts!r} is a {type(contracts).__name__}, not a ContractRegistry",
        )
    for i, version in enumerate(section.schema_versions or []):
        if version not in contracts:
            raise _fail(
                path,
                f"{prefix}schema_versions[{i}]",
                f"output schema v{version} is not in {section.contracts!r}",
            )
    _check_replay_setup(path, prefix, section)
    project = Project(path, section, tuple(workflows), modules, contracts, source)
    for key, where in (("catalog", project.catalog_path), ("histories", project.histories_path)):
        if where is not None and not where.exists():
            raise _fail(path, prefix + key, f"{where} does not exist")
    types = project.workflow_types
    seen: set[str] = set()
    for i, entry in enumerate(section.patch_entries() or []):
        if entry.id in seen:
            raise _fail(path, f"{prefix}patches[{i}]", f"patch id {entry.id!r} is named twice")
        seen.add(entry.id)
        if entry.workflow_type is not None and entry.workflow_type not in types:
            raise _fail(
                path,
                f"{prefix}patches[{i}].workflow_type",
                f"{entry.workflow_type!r} is not a workflow type of this project "
                f"({', '.join(types)})",
            )
    return project


def _check_replay_setup(path: Path, prefix: str, section: ProjectSection) -> None:
    """The converter, plugins and passthrough modules the config names exist and are what the
    key says (``replay-check`` imports them again in its worker processes)."""
    from temporalio.converter import DataConverter
    from temporalio.worker import Plugin

    if section.data_converter is not None:
        key = f"{prefix}data_converter"
        converter = _object(path, key, section.data_converter)
        if not isinstance(converter, DataConverter):
            raise _fail(
                path,
                key,
                f"{section.data_converter!r} is a {type(converter).__name__}, not a "
                "temporalio DataConverter",
            )
    for i, ref in enumerate(section.plugins):
        key = f"{prefix}plugins[{i}]"
        plugin = _object(path, key, ref)
        if not isinstance(plugin, Plugin):
            raise _fail(
                path, key, f"{ref!r} is a {type(plugin).__name__}, not a temporalio worker Plugin"
            )
    for i, name in enumerate(section.passthrough_modules):
        _import(path, f"{prefix}passthrough_modules[{i}]", name)


def reference_section() -> ProjectSection:
    """The reference document-classification pipeline, as a config would describe it: what
    every command uses when no project config is given or found."""
    from modelbaton.ops.defaults import DEFAULT_WORKFLOWS
    from modelbaton.pipeline.patches import PATCHES
    from modelbaton.settings import DEFAULT_TASK_QUEUE

    return ProjectSection(
        name="document_classification",
        task_queue=DEFAULT_TASK_QUEUE,
        workflows=list(DEFAULT_WORKFLOWS),
        activity_modules=["modelbaton.pipeline.activities"],
        contracts="modelbaton.contracts.registry:CLASSIFICATION",
        catalog=str(Path(__file__).resolve().parent / "models" / "catalog.toml"),
        review_attribute="ReviewState",
        patches=[
            PatchEntry(
                id=p.patch_id,
                workflow_type=p.workflow_type,
                description=p.description,
                deprecated_since=p.deprecated_since,
            )
            for p in PATCHES
        ],
    )


def reference_project() -> Project:
    """The built-in defaults: the reference pipeline, its package catalog, no histories folder."""
    here = Path(__file__).resolve().parent
    return _import_project(here / "<built-in reference pipeline>", reference_section(), "built-in")


def resolve_project(option: Path | None = None, *, cwd: Path | None = None) -> Project:
    """The project every ``baton`` command works on: ``option`` (``--project``), else
    ``MODELBATON_PROJECT``, else a config found from ``cwd`` (the working folder) up to the
    repository root, else the reference pipeline's built-in defaults."""
    if option is not None:
        return load_project(option)
    path = Settings.from_env().project
    if path is not None:
        named = str(path)
        if not path.exists():
            raise ProjectConfigError(f"{PROJECT_ENV}={named}: no such project config")
        project = load_project(path)
        return replace(project, source=PROJECT_ENV)
    found = find_config(cwd or Path.cwd())
    if found is not None:
        return replace(load_project(found), source="found")
    return reference_project()
