"""The replay gate: replay recorded histories against today's workflow code, in parallel.

Histories come from a folder of JSON files (ours, or ``temporal workflow show -o json``
exports, or Web UI downloads) or from a live server through a visibility query. Each worker
process builds its Replayer once and replays chunks of histories; results stream back so a
progress bar can follow.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import multiprocessing
import os
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import NondeterminismError

from modelbaton.errors import ConfigError
from modelbaton.files import write_whole

CHUNK = 64


@dataclass(frozen=True)
class HistoryItem:
    """One history to replay: its workflow id, where it came from and its JSON text."""

    workflow_id: str
    source: str
    history_json: str


@dataclass(frozen=True)
class ReplayOutcome:
    workflow_id: str
    source: str
    workflow_type: str
    model_version: str
    ok: bool
    error_type: str | None = None
    reason: str | None = None


def import_ref(ref: str, key: str, form: str = "module:name") -> Any:
    """The object a ``module:name`` path names; a bad path is a :class:`ConfigError` naming
    ``key`` and the path."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{key}: {ref!r} is not of the form {form}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{key}: cannot import {ref!r}: {exc}") from None


def load_workflow_classes(paths: Sequence[str]) -> list[type]:
    """Import ``module:Class`` paths; a bad path is a :class:`ConfigError` naming it."""
    classes: list[type] = []
    for path in paths:
        cls = import_ref(path, "--workflows", "module:Class")
        if not isinstance(cls, type):
            raise ConfigError(f"--workflows: {path!r} is not a class")
        classes.append(cls)
    return classes


def _workflow_id_of(doc: dict[str, Any], path: Path) -> str:
    # Our files and CLI exports carry no workflow id, so the file name (the id by convention)
    # names it; a wrapper object {"workflowId": ..., "history": ...} may say it explicitly.
    return str(doc.get("workflowId") or doc.get("workflow_id") or path.stem)


def load_histories_from_dir(folder: Path) -> list[HistoryItem]:
    """Every ``*.json`` under ``folder`` (sorted). Each must hold a history with events."""
    if not folder.is_dir():
        raise ConfigError(f"--histories: {folder} is not a folder")
    items: list[HistoryItem] = []
    for path in sorted(folder.rglob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--histories: {path}: not a JSON history ({exc})") from None
        history = doc.get("history", doc) if isinstance(doc, dict) else None
        if not isinstance(history, dict) or not history.get("events"):
            raise ConfigError(f"--histories: {path}: no 'events' list in it")
        items.append(HistoryItem(_workflow_id_of(doc, path), str(path), json.dumps(history)))
    if not items:
        raise ConfigError(f"--histories: no *.json histories in {folder}")
    return items


async def sample_executions(
    client: Client, query: str, *, sample: int | None = None, seed: int = 0, limit: int = 10_000
) -> tuple[int, list[tuple[str, str]]]:
    """(how many executions ``query`` finds, up to ``limit``; the (workflow id, run id) chosen).

    With ``sample``, a uniform random sample of that many (reservoir sampling over the listing,
    so memory stays at ``sample``), the same for the same ``seed`` and listing; else all of them.
    """
    if sample is not None and sample < 1:
        raise ConfigError(f"--sample {sample}: must be at least 1")
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    seen = 0
    async for wf in client.list_workflows(query, limit=limit):
        seen += 1
        if sample is None or len(chosen) < sample:
            chosen.append((wf.id, wf.run_id))
        else:
            slot = rng.randrange(seen)
            if slot < sample:
                chosen[slot] = (wf.id, wf.run_id)
    return seen, sorted(chosen)


async def fetch_histories(
    client: Client, query: str, limit: int = 10_000, *, sample: int | None = None, seed: int = 0
) -> list[HistoryItem]:
    """Histories of the workflows a visibility query selects (or a seeded sample of them),
    fetched concurrently."""
    gate = asyncio.Semaphore(16)
    _, ids = await sample_executions(client, query, sample=sample, seed=seed, limit=limit)

    async def one(wid: str, run_id: str) -> HistoryItem:
        async with gate:
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        return HistoryItem(wid, f"{client.namespace}/{wid}/{run_id}", history.to_json())

    return list(await asyncio.gather(*(one(w, r) for w, r in ids)))


@dataclass(frozen=True)
class ExportReport:
    """What ``baton histories export`` did."""

    matched: int
    written: list[str]
    kept: list[str]


def _file_name(workflow_id: str, run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in workflow_id)
    return f"{safe}.{run_id[:8]}.json"


async def export_histories(
    client: Client,
    query: str,
    out: Path,
    *,
    sample: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    limit: int = 10_000,
) -> ExportReport:
    """Write the histories ``query`` selects (or a seeded sample) into ``out``, one JSON file per
    run, as ``baton replay-check --histories`` reads them: ``{"workflowId", "runId",
    "history"}``. Each file is written whole (a temporary file renamed into place); a file already
    there is kept unless ``overwrite``."""
    there = _export_folder(out)
    matched, ids = await sample_executions(client, query, sample=sample, seed=seed, limit=limit)
    written: list[str] = []
    kept: list[str] = []
    for wid, run_id in ids:
        path = out / _file_name(wid, run_id)
        if not overwrite and path.name in there:
            kept.append(str(path))
            continue
        history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        doc = {"workflowId": wid, "runId": run_id, "history": json.loads(history.to_json())}
        write_whole(path, json.dumps(doc, indent=1))
        written.append(str(path))
    return ExportReport(matched=matched, written=written, kept=kept)


def _export_folder(out: Path) -> set[str]:
    """Create ``out`` if needed; the names of the files already in it."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return {p.name for p in out.iterdir()}


def describe_history(history_json: str) -> tuple[str, str]:
    """(workflow type, model version) from the started event and its search attributes."""
    doc = json.loads(history_json)
    events = doc.get("events") or [{}]
    attrs = events[0].get("workflowExecutionStartedEventAttributes", {})
    wf_type = attrs.get("workflowType", {}).get("name", "?")
    fields = attrs.get("searchAttributes", {}).get("indexedFields", {})
    version = "?"
    if "ModelVersion" in fields:
        import base64

        raw = base64.b64decode(fields["ModelVersion"].get("data", ""))
        try:
            version = str(json.loads(raw))
        except json.JSONDecodeError:
            version = raw.decode(errors="replace")
    return wf_type, version


@dataclass(frozen=True)
class ReplaySetup:
    """What the project's workers run with besides their workflows, as ``module:name`` paths
    (imported again in each worker process): a data converter (default: pydantic's), plugins,
    and the modules the sandbox passes through."""

    data_converter: str | None = None
    plugins: tuple[str, ...] = ()
    passthrough_modules: tuple[str, ...] = ()

    def replayer(self, classes: Sequence[type]) -> Replayer:
        converter = (
            import_ref(self.data_converter, "data_converter")
            if self.data_converter
            else pydantic_data_converter
        )
        plugins = [import_ref(ref, "plugins") for ref in self.plugins]
        runner = SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(
                *self.passthrough_modules
            )
        )
        return Replayer(
            workflows=list(classes),
            data_converter=converter,
            plugins=plugins,
            workflow_runner=runner,
        )


async def _replay(
    classes: list[type], items: Sequence[HistoryItem], setup: ReplaySetup = ReplaySetup()
) -> list[ReplayOutcome]:
    replayer = setup.replayer(classes)
    # Results come back in the order histories are handed over; match them by that order, not
    # by workflow id, which two files (or two runs) may share.
    handed: deque[HistoryItem] = deque()

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for item in items:
            handed.append(item)
            yield WorkflowHistory.from_json(item.workflow_id, item.history_json)

    out: list[ReplayOutcome] = []
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:
            item = handed.popleft()
            assert item.workflow_id == result.history.workflow_id
            wf_type, version = describe_history(item.history_json)
            failure = result.replay_failure
            out.append(
                ReplayOutcome(
                    workflow_id=item.workflow_id,
                    source=item.source,
                    workflow_type=wf_type,
                    model_version=version,
                    ok=failure is None,
                    error_type=(
                        "NondeterminismError"
                        if isinstance(failure, NondeterminismError)
                        else type(failure).__name__
                        if failure
                        else None
                    ),
                    reason=str(failure)[:500] if failure else None,
                )
            )
    return out


def _replay_chunk(
    workflow_paths: tuple[str, ...], items: list[HistoryItem], setup: ReplaySetup
) -> list[ReplayOutcome]:
    """Runs in a worker process: import the classes there and replay one chunk."""
    return asyncio.run(_replay(load_workflow_classes(workflow_paths), items, setup))


def replay_histories(
    workflow_paths: Sequence[str],
    items: Sequence[HistoryItem],
    *,
    processes: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    setup: ReplaySetup = ReplaySetup(),
) -> list[ReplayOutcome]:
    """Replay ``items`` across ``processes`` worker processes (1: in this process)."""
    paths = tuple(workflow_paths)
    classes = load_workflow_classes(paths)  # fail fast, here, on a bad path
    setup.replayer(classes)  # and on a bad converter or plugin
    n = max(1, processes or os.cpu_count() or 1)
    if n == 1:
        outcomes = asyncio.run(_replay(classes, items, setup))
        if on_progress:
            on_progress(len(outcomes))
        return outcomes
    chunks = [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
    outcomes = []
    # spawn, not fork: the SDK's Rust runtime refuses to run in a forked child.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n, len(chunks) or 1), mp_context=context) as pool:
        futures = [pool.submit(_replay_chunk, paths, chunk, setup) for chunk in chunks]
        for future in as_completed(futures):
            done = future.result()
            outcomes.extend(done)
            if on_progress:
                on_progress(len(done))
    return outcomes


def summarize(outcomes: Sequence[ReplayOutcome]) -> dict[str, Any]:
    """Counts by workflow type and model version, and every failure with its reason."""
    failed = [o for o in outcomes if not o.ok]
    return {
        "replayed": len(outcomes),
        "passed": len(outcomes) - len(failed),
        "failed": len(failed),
        "by_workflow_type": _counts(outcomes, lambda o: o.workflow_type),
        "by_model_version": _counts(outcomes, lambda o: o.model_version),
        "failures": [asdict(o) for o in sorted(failed, key=lambda o: o.workflow_id)],
    }


def _counts(
    outcomes: Sequence[ReplayOutcome], key: Callable[[ReplayOutcome], str]
) -> dict[str, dict[str, int]]:
    total = Counter(key(o) for o in outcomes)
    bad = Counter(key(o) for o in outcomes if not o.ok)
    return {k: {"replayed": v, "failed": bad[k]} for k, v in sorted(total.items())}
