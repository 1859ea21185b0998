"""The commands that need a server read the project's config, not the reference pipeline's: its
workflow types (``status``, ``patches``), its task queue (``deploy``, ``drain``, ``rollout``) and
its catalog (``rollout status``, ``preflight``), on the dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from typer.testing import CliRunner

from invoice_catalog import EXAMPLE, INVOICE_CATALOG, example_project
from modelbaton.app.main import baton
from modelbaton.pipeline.search_attributes import MODEL_VERSION
from modelbaton.rollout.messages import rollout_workflow_id
from modelbaton.versioning.builds import deployment_name_for
from waiting import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
REFERENCE = ROOT / "modelbaton.toml"


@workflow.defn(name="InvoiceExtraction")
class FailingInvoice:
    """Registered under the example's workflow type: it fails at once."""

    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("no invoice today", non_retryable=True)


def env_for(client: Client, tmp_path: Path) -> dict[str, str | None]:
    return {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": None,
        "MODELBATON_CATALOG": None,
        "MODELBATON_PROJECT": None,
    }


async def invoke(env: dict[str, str | None], *args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)


async def test_status_reports_the_project_workflow_types_only(
    isolated_client: Client, tmp_path: Path
) -> None:
    env = env_for(isolated_client, tmp_path)
    queue = f"invoices-{uuid.uuid4().hex[:8]}"
    async with Worker(
        isolated_client,
        task_queue=queue,
        workflows=[FailingInvoice],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        with pytest.raises(WorkflowFailureError):
            await isolated_client.execute_workflow(
                FailingInvoice.run, id=f"inv-{uuid.uuid4().hex[:8]}", task_queue=queue
            )

    async def reported() -> dict[str, Any] | None:
        result = await invoke(env, "status", "--project", str(EXAMPLE), "--json")
        if result.exit_code != 1:
            return None
        data: dict[str, Any] = json.loads(result.stdout)
        return data if data["failed"] else None

    data = await eventually(reported, within=30, what="status of the example reports the failure")
    assert data is not None
    assert data["workflow_types"] == ["InvoiceExtraction"]
    (failed,) = data["failed"]
    assert failed["workflow_type"] == "InvoiceExtraction"
    assert "no invoice today" in failed["reason"]
    # The reference pipeline's workflow type is another: nothing for it.
    reference = await invoke(env, "status", "--project", str(REFERENCE), "--json")
    assert reference.exit_code == 0, reference.output
    assert json.loads(reference.stdout)["failed"] == []
    # --task-queue narrows the example's workflows to that queue.
    elsewhere = await invoke(
        env, "status", "--project", str(EXAMPLE), "--task-queue", "elsewhere", "--json"
    )
    assert elsewhere.exit_code == 0, elsewhere.output
    there = await invoke(env, "status", "--project", str(EXAMPLE), "--task-queue", queue)
    assert there.exit_code == 1, there.output


async def test_patches_judges_the_project_patches_on_its_workflow_type(
    isolated_client: Client, tmp_path: Path
) -> None:
    env = env_for(isolated_client, tmp_path)
    # A running invoice workflow no worker has picked up: no marker, patch site not reached.
    handle = await isolated_client.start_workflow(
        "InvoiceExtraction", id=f"inv-{uuid.uuid4().hex[:8]}", task_queue="nobody-polls"
    )

    async def counted() -> list[dict[str, Any]] | None:
        result = await invoke(env, "patches", "--project", str(EXAMPLE), "--json")
        assert result.exit_code == 0, result.output
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows if rows and rows[0]["running_ambiguous"] == 1 else None

    rows = await eventually(counted, within=30, what="the example's patch counted")
    assert rows is not None
    assert [(r["patch_id"], r["workflow_type"]) for r in rows] == [
        ("invoice-assigned-model", "InvoiceExtraction"),
        ("invoice-record-comparison", "InvoiceExtraction"),
    ]
    reference = await invoke(env, "patches", "--project", str(REFERENCE), "--json")
    assert reference.exit_code == 0, reference.output
    ref_rows = json.loads(reference.stdout)
    assert [r["patch_id"] for r in ref_rows] == [
        "PATCH_CLASSIFY_V2",
        "PATCH_MODEL_ASSIGNMENT",
        "PATCH_SHADOW",
        "PATCH_RESTORE_V1",
    ]
    assert {r["workflow_type"] for r in ref_rows} == {"DocumentClassificationWorkflow"}
    assert all(r["running_ambiguous"] == 0 for r in ref_rows)
    unknown = await invoke(
        env, "patches", "--project", str(EXAMPLE), "--deprecated-since", "PATCH_SHADOW=2026-01-01"
    )
    assert unknown.exit_code == 2
    assert "'PATCH_SHADOW' is not a patch of project invoice_extraction" in unknown.stderr
    await handle.terminate("test done")


async def test_deploy_and_drain_use_the_project_task_queue(
    isolated_client: Client, tmp_path: Path
) -> None:
    env = env_for(isolated_client, tmp_path)
    for args in (("deploy", "status"), ("deploy", "rollback"), ("drain", "--from", "A")):
        result = await invoke(env, *args, "--project", str(EXAMPLE))
        assert result.exit_code == 2, result.output
        assert f"no worker deployment '{deployment_name_for('invoices')}'" in result.stderr
        other = await invoke(env, *args, "--project", str(EXAMPLE), "--task-queue", "q-other")
        assert other.exit_code == 2, other.output
        assert f"no worker deployment '{deployment_name_for('q-other')}'" in other.stderr


async def test_a_pool_drain_counts_the_projects_workflows(
    isolated_client: Client, tmp_path: Path
) -> None:
    """``drain --pool`` waits for the project's documents on that model version: an invoice
    still running on v2 (no worker takes it) is what the deadline reports, and nothing of it is
    counted as waiting for a person (the example marks none)."""
    env = env_for(isolated_client, tmp_path)
    project = example_project(tmp_path, INVOICE_CATALOG)
    queue = f"invoices-{uuid.uuid4().hex[:6]}"
    handle = await isolated_client.start_workflow(
        "InvoiceExtraction",
        id=f"invoice-on-v2-{queue}",
        task_queue=queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(MODEL_VERSION, "v2")]),
    )
    visible = f"WorkflowId = '{handle.id}' AND ModelVersion = 'v2'"

    async def listed() -> bool:
        return (await isolated_client.count_workflows(visible)).count == 1

    await eventually(listed, what="the invoice on v2 in visibility")
    args = ["drain", "--pool", "--from", "v2", "--project", str(project), "--task-queue", queue]
    drained = await invoke(env, *args, "--deadline", "1s", "--on-deadline", "report", "--json")
    assert drained.exit_code == 1, drained.output
    result = json.loads(drained.stdout)
    assert result["remaining"] == [handle.id]
    assert result["target"] == f"model v2 on {queue}"
    await handle.terminate("test done")


async def test_rollout_status_and_preflight_read_the_project_catalog_and_queue(
    isolated_client: Client, tmp_path: Path
) -> None:
    env = env_for(isolated_client, tmp_path)
    project = example_project(tmp_path, INVOICE_CATALOG)
    steady = await invoke(env, "rollout", "status", "--project", str(project), "--json")
    assert steady.exit_code == 0, steady.output
    plan = json.loads(steady.stdout)["plan"]
    assert (plan["model_id"], plan["baseline"]["version"]) == ("invoice", "v1")
    # The rollout workflow of the example's queue and model id, stopped by hand: the command
    # reads that one (and says so), and another queue's is not it.
    wid = rollout_workflow_id("invoices", "invoice")
    stopped = await isolated_client.start_workflow("NotARollout", id=wid, task_queue="nobody")
    await stopped.terminate("test: a stopped rollout workflow")
    refused = await invoke(env, "rollout", "status", "--project", str(project))
    assert refused.exit_code == 2, refused.output
    assert f"rollout workflow {wid} is terminated" in refused.stderr
    other = await invoke(
        env, "rollout", "status", "--project", str(project), "--task-queue", "q-other", "--json"
    )
    assert other.exit_code == 0, other.output
    preflight = await invoke(
        env, "preflight", "--project", str(project), "--task-queue", "q-other", "--candidate", "v2"
    )
    assert preflight.exit_code in (0, 1), preflight.output
    assert "preflight: v1 -> v2" in preflight.stdout
    # Every check reads the project's spec: its schemas, its registry, its own patches.
    as_json = await invoke(
        env,
        "preflight",
        "--project",
        str(project),
        "--task-queue",
        "q-other",
        "--candidate",
        "v2",
        "--json",
    )
    checks = {c["check"]: c for c in json.loads(as_json.stdout)["checks"]}
    assert checks["output schemas and normalizers"]["status"] == "pass"
    assert "called by InvoiceExtraction" in checks["output schemas and normalizers"]["reason"]
    assert "canonical Invoice" in checks["compatibility"]["reason"]
    assert checks["patches"]["status"] == "pass"
    assert checks["patches"]["reason"].startswith("2 patches")
