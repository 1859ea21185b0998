"""The patch lifecycle: for each registered patch, may it be deprecated, or removed?

Rules (checked against the real server and Replayer, see tests/integration/test_transitions.py):

- A pre-patch workflow (no marker) replays only on code that still has the old branch, so the
  patch may be *deprecated* once no running workflow lacks the marker.
- Markers written by ``patched()`` (not deprecated) must be matched on replay; only markers
  written by ``deprecate_patch()`` may be dropped. So the patch may be *removed* once every
  workflow recorded before the deprecation is gone: not running, and no longer within the
  namespace's retention (opening a closed workflow, for a query or a reset, replays it).
- A running workflow without the marker that has not yet reached the patch site is ambiguous: it
  will take whichever branch the code it meets chooses. It is counted apart, never guessed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from modelbaton.pipeline.patches import PATCHES, PatchInfo

if TYPE_CHECKING:
    from modelbaton.project import Project

_PATCH_CALLS = {"patched", "deprecate_patch"}


def _constant(node: ast.expr, scope: dict[str, Any]) -> str | None:
    """The string a patch call's argument names: a literal, or a module-level name (``PATCH_X``,
    ``patches.PATCH_X``) bound to one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    path: list[str] = []
    while isinstance(node, ast.Attribute):
        path.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in scope:
        return None
    value: Any = scope[node.id]
    for attr in path:
        value = getattr(value, attr, None)
    return value if isinstance(value, str) else None


def discover_patches(workflow_class: type) -> list[str]:
    """Patch ids that ``workflow_class``'s own code passes to ``workflow.patched`` or
    ``workflow.deprecate_patch``, in source order (ids computed at run time are not seen)."""
    try:
        source = textwrap.dedent(inspect.getsource(workflow_class))
    except (OSError, TypeError):
        return []
    module = sys.modules.get(workflow_class.__module__)
    scope = vars(module) if module is not None else {}
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _PATCH_CALLS:
            pid = _constant(node.args[0], scope)
            if pid is not None and pid not in found:
                found.append(pid)
    return found


def project_patches(project: Project) -> tuple[PatchInfo, ...]:
    """The patches ``baton patches`` judges for ``project``: those its config declares (each
    entry's workflow type, else the project's only workflow, else the one whose code names it),
    else those found in its workflow code."""
    types = project.workflow_types
    by_code = {t: discover_patches(c) for t, c in zip(types, project.workflows, strict=True)}
    entries = project.section.patch_entries()
    if entries is None:
        return tuple(
            PatchInfo(pid, t, "found in the workflow code") for t in types for pid in by_code[t]
        )
    out: list[PatchInfo] = []
    for i, entry in enumerate(entries):
        wtype = entry.workflow_type
        if wtype is None:
            naming = [t for t in types if entry.id in by_code[t]]
            if len(types) == 1:
                wtype = types[0]
            elif len(naming) == 1:
                wtype = naming[0]
            else:
                raise project.error(
                    f"patches[{i}]",
                    f"patch {entry.id!r}: give its workflow_type ("
                    + ("no workflow's code names it" if not naming else "several workflows name it")
                    + f"; the project's: {', '.join(types)})",
                )
        out.append(PatchInfo(entry.id, wtype, entry.description, entry.deprecated_since))
    return tuple(out)


class Advice(StrEnum):
    KEEP = "keep"
    SAFE_TO_DEPRECATE = "safe to deprecate"
    DEPRECATED_KEEP = "deprecated: keep"
    SAFE_TO_REMOVE = "safe to remove"


@dataclass(frozen=True)
class PatchCounts:
    """What visibility (and, for the ambiguous ones, history) says about one patch."""

    running_with_marker: int
    running_pre_patch: int  # running, no marker, already past the patch site
    running_ambiguous: int  # running, no marker, patch site not reached yet
    closed_without_marker: int  # closed, still within retention
    recorded_before_deprecation: int  # running or closed within retention; 0 if not deprecated
    retention: timedelta | None


def advise(patch: PatchInfo, c: PatchCounts) -> tuple[Advice, str]:
    """The verdict and the reason, from counts alone (pure, unit-tested)."""
    retention = f"{c.retention.days} days" if c.retention else "the retention period"
    if c.running_pre_patch:
        return Advice.KEEP, (
            f"{c.running_pre_patch} running workflows took the pre-patch branch; the old code "
            "path must stay until they close"
        )
    if c.running_ambiguous:
        return Advice.KEEP, (
            f"{c.running_ambiguous} running workflows have no marker and have not reached the "
            "patch site yet: which branch they take is not decided, re-run later"
        )
    if patch.deprecated_since is None:
        note = (
            f"; {c.closed_without_marker} closed pre-patch workflows are within {retention}, "
            "and opening one (query, reset) on deprecated code fails replay"
            if c.closed_without_marker
            else ""
        )
        return Advice.SAFE_TO_DEPRECATE, (
            f"no running workflow lacks the marker ({c.running_with_marker} carry it){note}"
        )
    if c.closed_without_marker:
        return Advice.DEPRECATED_KEEP, (
            f"{c.closed_without_marker} closed pre-patch workflows are within {retention}; "
            "code without the patch cannot replay them"
        )
    if c.recorded_before_deprecation:
        return Advice.DEPRECATED_KEEP, (
            f"{c.recorded_before_deprecation} workflows recorded before the deprecation "
            f"({patch.deprecated_since.isoformat()}) are running or within {retention}; their "
            "markers must still be matched"
        )
    return Advice.SAFE_TO_REMOVE, (
        f"every workflow recorded before the deprecation ({patch.deprecated_since.isoformat()}) "
        f"has closed and left {retention}"
    )


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def _reached_patch_site(client: Client, workflow_id: str, run_id: str | None) -> bool:
    """The pipeline's patch site precedes its first activity: a scheduled one means passed."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events)


async def patch_counts(
    client: Client, patch: PatchInfo, *, inspect_limit: int = 500
) -> PatchCounts:
    base = f"WorkflowType = '{patch.workflow_type}'"
    marker = f"TemporalChangeVersion = '{patch.patch_id}'"
    running = f"{base} AND ExecutionStatus = 'Running'"
    no_marker = "TemporalChangeVersion IS NULL"
    with_marker = await _count(client, f"{running} AND {marker}")
    pre_patch = ambiguous = 0
    gate = asyncio.Semaphore(16)

    async def classify(wid: str, run_id: str | None) -> bool:
        async with gate:
            return await _reached_patch_site(client, wid, run_id)

    lacking = [
        (wf.id, wf.run_id)
        async for wf in client.list_workflows(f"{running} AND {no_marker}", limit=inspect_limit)
    ]
    for reached in await asyncio.gather(*(classify(w, r) for w, r in lacking)):
        if reached:
            pre_patch += 1
        else:
            ambiguous += 1
    total_lacking = await _count(client, f"{running} AND {no_marker}")
    ambiguous += max(0, total_lacking - len(lacking))  # beyond the inspect limit: not guessed
    closed_without = await _count(
        client, f"{base} AND ExecutionStatus != 'Running' AND {no_marker}"
    )
    before = 0
    if patch.deprecated_since is not None:
        stamp = patch.deprecated_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        before = await _count(client, f"{base} AND StartTime < '{stamp}'")
    ns = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    ttl = ns.config.workflow_execution_retention_ttl
    retention = timedelta(seconds=ttl.seconds) if ttl.seconds else None
    return PatchCounts(with_marker, pre_patch, ambiguous, closed_without, before, retention)


async def patch_report(
    client: Client,
    patches: tuple[PatchInfo, ...] = PATCHES,
    deprecated_since: dict[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """Counts and advice for every registered patch."""
    rows: list[dict[str, Any]] = []
    for patch in patches:
        if deprecated_since and patch.patch_id in deprecated_since:
            patch = PatchInfo(
                patch.patch_id,
                patch.workflow_type,
                patch.description,
                deprecated_since[patch.patch_id],
            )
        counts = await patch_counts(client, patch)
        advice, reason = advise(patch, counts)
        row = asdict(counts) | {
            "patch_id": patch.patch_id,
            "workflow_type": patch.workflow_type,
            "deprecated_since": patch.deprecated_since,
            "advice": advice.value,
            "reason": reason,
            "retention": str(counts.retention) if counts.retention else None,
        }
        rows.append(row)
    return rows


async def counts_by_build(
    client: Client, patch_id: str, workflow_type: str, deployment: str, builds: Sequence[Any]
) -> dict[str, dict[str, int]]:
    """Running workflows of each build of ``deployment`` (and unversioned ones), with and without
    ``patch_id``'s marker.

    A pinned workflow only ever replays on its own build's code, so a pre-patch workflow pinned
    to an old build needs the old path in that build alone: newer builds may ship without it.
    """
    base = f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running'"
    marker = f"TemporalChangeVersion = '{patch_id}'"
    selections = {
        b.build_id: f"TemporalWorkerDeploymentVersion = '{deployment}:{b.build_id}'" for b in builds
    }
    selections["(unversioned)"] = "TemporalWorkerDeploymentVersion IS NULL"
    out: dict[str, dict[str, int]] = {}
    for name, where in selections.items():
        running, marked = await asyncio.gather(
            _count(client, f"{base} AND {where}"),
            _count(client, f"{base} AND {where} AND {marker}"),
        )
        out[name] = {
            "running": running,
            "with_marker": marked,
            "without_marker": running - marked,
        }
    return out
