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

Every error names the file and the key, in one line (``baton`` exits 2 on it).
"""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelbaton.contracts.schemas import ContractRegistry
from modelbaton.errors import ConfigError

CONFIG_FILE = "modelbaton.toml"
PYPROJECT = "pyproject.toml"
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ProjectConfigError(ConfigError):
    """The project config is invalid; the message names the file and the key."""


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


@dataclass(frozen=True)
class Project:
    """A loaded project: its config and every object it names, imported and checked."""

    path: Path
    section: ProjectSection
    workflows: tuple[type, ...]
    activity_modules: tuple[ModuleType, ...]
    contracts: ContractRegistry[Any]

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

    @property
    def catalog_path(self) -> Path | None:
        return self.root / self.section.catalog if self.section.catalog else None

    @property
    def histories_path(self) -> Path | None:
        return self.root / self.section.histories if self.section.histories else None


def find_config(start: Path) -> Path | None:
    """``modelbaton.toml``, or a ``pyproject.toml`` with ``[tool.modelbaton]``, in ``start`` or
    the nearest parent folder that has one."""
    for folder in [start, *start.parents]:
        own = folder / CONFIG_FILE
        if own.is_file():
            return own
        py = folder / PYPROJECT
        if py.is_file():
            try:
                data = tomllib.loads(py.read_text())
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if "modelbaton" in data.get("tool", {}):
                return py
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
    from temporalio import workflow

    if path is None:
        found = find_config(Path.cwd())
        if found is None:
            raise ProjectConfigError(
                f"no {CONFIG_FILE} or {PYPROJECT} with [tool.modelbaton] in {Path.cwd()} or above"
            )
        path = found
    path = path.resolve() if path.exists() else path
    if path.is_dir():
        path = path / CONFIG_FILE
    section = read_section(path)
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
    project = Project(path, section, tuple(workflows), modules, contracts)
    for key, where in (("catalog", project.catalog_path), ("histories", project.histories_path)):
        if where is not None and not where.exists():
            raise _fail(path, prefix + key, f"{where} does not exist")
    return project
