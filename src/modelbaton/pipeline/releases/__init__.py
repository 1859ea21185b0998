"""The released stages of DocumentClassificationWorkflow, one module per lifecycle stage.

All share the workflow type name, so any of them can resume the others' histories where the
patching rules allow it. ``RELEASES`` maps a release name to its workflow class. ``deprecated`` and
``complete`` are the later lifecycle stages of ``PATCH_CLASSIFY_V2`` as they would ship on top of
``patched``; ``assigned`` adds ``PATCH_MODEL_ASSIGNMENT`` on top of ``patched``, and ``shadow``
adds ``PATCH_SHADOW`` on top of ``assigned``. ``restored`` adds ``PATCH_RESTORE_V1`` on top of
``complete``: the rollback of scenario C, the removed schema-1 path brought back as a new patch.

As in Temporal's ``patching`` sample, the current release is the live code
(``modelbaton.pipeline.workflow``) and every other stage is a frozen, self-contained file
(``rN_<name>.py``, with its own copy of what the releases once shared, never edited:
``tests/unit/test_frozen_releases.py`` holds their digests). So a change to today's code cannot
change what an old release does.

Release modules are imported only when asked for: the workflow sandbox re-imports a workflow's
module, and with it this package, for every workflow run, so importing all five here cost about
5 ms of worker CPU per workflow (measured by ``bench/shape_costs.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

_MODULES = {
    "initial": f"{__name__}.r1_initial",
    "patched": f"{__name__}.r2_patched",
    "deprecated": f"{__name__}.r3_deprecated",
    "complete": f"{__name__}.r4_complete",
    "assigned": f"{__name__}.r5_assigned",
    "shadow": "modelbaton.pipeline.workflow",  # the current release is the live code
    "restored": f"{__name__}.r7_restored",
}
CURRENT_RELEASE = "shadow"
#: Releases that shipped, in order: today's code must replay every history they recorded.
#: ``deprecated``, ``complete`` and ``restored`` never shipped; they serve the lifecycle matrix
#: tests.
SHIPPED = ("initial", "patched", "assigned", "shadow")


class _Releases(Mapping[str, type]):
    """Release name -> workflow class, importing a release's module on first use."""

    def __getitem__(self, name: str) -> type:
        module = importlib.import_module(_MODULES[name])
        workflow: type = module.DocumentClassificationWorkflow
        return workflow

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


RELEASES: Mapping[str, type] = _Releases()


def serves_schema(release: str, schema: int) -> bool:
    """Whether a new workflow on ``release`` can classify with a model of raw output ``schema``.

    Each release module declares ``SERVES_SCHEMAS``. False for ``complete`` and schema 1: that is
    rollback scenario C, where the old path is gone and must come back as a new patch
    (``restored``). Raises ``KeyError`` for an unknown release.
    """
    return schema in served_schemas(release)


def served_schemas(release: str) -> frozenset[int]:
    """The raw output schemas a new workflow on ``release`` can classify with (its module's
    ``SERVES_SCHEMAS``); ``KeyError`` for an unknown release."""
    module = importlib.import_module(_MODULES[release])
    served: frozenset[int] = module.SERVES_SCHEMAS
    return served


def module_of(release: str) -> str:
    """The dotted module of a release; ConfigError naming the choices for an unknown one."""
    try:
        return _MODULES[release]
    except KeyError:
        from modelbaton.errors import ConfigError

        raise ConfigError(
            f"unknown workflow release {release!r}; choose one of {', '.join(_MODULES)}"
        ) from None


def source_of(release: str) -> str:
    """The file of a release's workflow code, relative to the ``modelbaton`` package
    (``pipeline/releases/r1_initial.py``, ``pipeline/workflow.py``); ConfigError if unknown."""
    return module_of(release).removeprefix("modelbaton.").replace(".", "/") + ".py"


def class_path(release: str) -> str:
    """``module:Class`` of a release's workflow (what ``baton replay-check --workflows`` takes);
    KeyError for an unknown release."""
    return f"{_MODULES[release]}:DocumentClassificationWorkflow"


__all__ = [
    "CURRENT_RELEASE",
    "RELEASES",
    "SHIPPED",
    "class_path",
    "module_of",
    "serves_schema",
    "source_of",
]
