"""Every ``baton`` command that reads workflows finds the project one way (``--project``, else
``MODELBATON_PROJECT``, else a config here or above, else the reference pipeline), takes its task
queue, workflows, catalog and patches from it, and refuses a bad one in one line (exit 2); and
every duration option goes through one parser. The commands that need a server are exercised in
tests/integration/test_project_commands_live.py."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from invoice_catalog import EXAMPLE, INVOICE_CATALOG, example_project
from modelbaton.app.main import baton as app
from modelbaton.cli._project import context
from modelbaton.durations import format_duration, parse_duration
from modelbaton.errors import ConfigError
from modelbaton.ops.patches import discover_patches, project_patches
from modelbaton.project import ProjectConfigError, find_config, load_project, resolve_project
from modelbaton.versioning.builds import deployment_name_for

ROOT = Path(__file__).parents[2]
REFERENCE = ROOT / "modelbaton.toml"
runner = CliRunner()
#: The settings a test must not inherit from the shell that runs it.
CLEAN_ENV = {"MODELBATON_PROJECT": None, "MODELBATON_TASK_QUEUE": None, "MODELBATON_CATALOG": None}


PLAN = """
candidate = "v2"

[[steps]]
kind = "canary"
fraction = 0.1
bake = "1h30m"

[[steps]]
kind = "promote"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


# --- durations: one parser ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("90", 90.0),
        (" 2M ", 120.0),
        (45, 45.0),
        (2.5, 2.5),
        ("0s", 0.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5x", "-3s", "1h1h", "", "m", "1h 30", True, None, []])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative, got -3"):
        parse_duration(-3)


def test_positive_durations_refuse_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        parse_duration("0s", positive=True)


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (90, "1m30s"), (0.5, "0.5s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_plan_toml_reads_durations_with_the_same_parser(tmp_path: Path) -> None:
    from modelbaton.controller.plan import load_plan

    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    assert load_plan(path).steps[0].bake == 5400.0  # type: ignore[union-attr]
    path.write_text(PLAN.replace('bake = "1h30m"', "bake = 300"))  # plain seconds, as before
    assert load_plan(path).steps[0].bake == 300.0  # type: ignore[union-attr]
    path.write_text(PLAN.replace('"1h30m"', '"soon"'))
    with pytest.raises(ConfigError, match="bake") as caught:
        load_plan(path)
    assert "soon" in str(caught.value)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["status", "--since", "soon"], "--since"),
        (["status", "--retrying-for", "0s"], "--retrying-for"),
        (["drain", "--from", "A", "--deadline", "5x"], "--deadline"),
        (["drain", "--from", "A", "--poll", "2h"], "--poll"),
        (["rollout", "status", "--interval", "fast"], "--interval"),
        (["rollout", "start", "--candidate", "v2", "--shadow-budget", "-1s"], "--shadow-budget"),
        (["ui", "--refresh", "1h1h"], "--refresh"),
        (["submit", "--generate", "1", "--wait", "--timeout", "later"], "--timeout"),
    ],
)
def test_a_bad_duration_option_exits_2_naming_it(args: list[str], option: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    value = args[args.index(option) + 1]
    assert option in line
    assert repr(value) in line


def test_durations_in_the_new_format_pass_the_parser() -> None:
    # Past the duration, status goes on to read the project: a missing one proves it got there.
    result = runner.invoke(
        app, ["status", "--since", "1h30m", "--retrying-for", "90", "--project", "/nope.toml"]
    )
    assert result.exit_code == 2
    assert "/nope.toml: no such project config" in result.stderr


# --- finding the project ----------------------------------------------------------------------


def test_the_project_is_found_in_the_working_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE.parent / "histories")  # a parent holds the config
    project = resolve_project()
    assert (project.path, project.source, project.task_queue) == (EXAMPLE, "found", "invoices")


def test_the_option_comes_before_the_environment_and_the_environment_before_the_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)  # the reference pipeline's config is here
    assert resolve_project().name == "document_classification"
    monkeypatch.setenv("MODELBATON_PROJECT", str(EXAMPLE))
    env = resolve_project()
    assert (env.name, env.source) == ("invoice_extraction", "MODELBATON_PROJECT")
    assert resolve_project(REFERENCE).name == "document_classification"
    monkeypatch.setenv("MODELBATON_PROJECT", str(tmp_path / "missing.toml"))
    with pytest.raises(ProjectConfigError, match=r"MODELBATON_PROJECT=.*missing\.toml: no such"):
        resolve_project()


def test_without_a_config_the_reference_pipeline_is_built_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A config above the repository root (a folder with .git) is not this repository's.
    (tmp_path / "modelbaton.toml").write_text("name = 'not this one'\n")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "repo" / "sub")
    assert find_config(Path.cwd()) is None
    project = resolve_project()
    assert project.builtin
    assert project.task_queue == "modelbaton-classify"
    assert project.workflow_types == ["DocumentClassificationWorkflow"]
    assert project.catalog_path == ROOT / "src" / "modelbaton" / "models" / "catalog.toml"
    assert [p.patch_id for p in project_patches(project)] == [
        "PATCH_CLASSIFY_V2",
        "PATCH_MODEL_ASSIGNMENT",
        "PATCH_SHADOW",
        "PATCH_RESTORE_V1",
    ]


def test_the_context_takes_the_example_queue_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = context(EXAMPLE)
    assert ctx.task_queue == "invoices"
    assert ctx.workflow_types == ["InvoiceExtraction"]
    assert ctx.types_condition() == "WorkflowType = 'InvoiceExtraction'"
    assert ctx.deployment() == deployment_name_for("invoices")
    assert context(EXAMPLE, "other-queue").task_queue == "other-queue"
    monkeypatch.setenv("MODELBATON_TASK_QUEUE", "from-env")
    assert context(EXAMPLE).task_queue == "from-env"
    assert context(EXAMPLE, "flag").task_queue == "flag"


def test_an_empty_task_queue_exits_2() -> None:
    result = runner.invoke(app, ["patches", "--project", str(EXAMPLE), "--task-queue", " "])
    assert result.exit_code == 2
    assert "--task-queue ' ': must not be empty" in one_error_line(result.stderr)


# --- patches: declared, or found in the workflow code ----------------------------------------


def test_patches_are_found_in_the_example_workflow_code() -> None:
    project = load_project(EXAMPLE)
    # The two workflow.patched calls in examples/invoice_extraction/workflow.py.
    found = ["invoice-assigned-model", "invoice-record-comparison"]
    assert discover_patches(project.workflows[0]) == found
    patches = project_patches(project)
    assert [(p.patch_id, p.workflow_type) for p in patches] == [
        (f, "InvoiceExtraction") for f in found
    ]


def test_declared_patches_win_and_are_checked(tmp_path: Path) -> None:
    path = example_project(tmp_path)
    with path.open("a") as f:
        f.write(
            'patches = ["invoice-assigned-model", {id = "later", description = "next one", '
            "deprecated_since = 2026-01-02T03:04:05Z}]\n"
        )
    declared = project_patches(load_project(path))
    assert [(p.patch_id, p.workflow_type, p.description) for p in declared] == [
        ("invoice-assigned-model", "InvoiceExtraction", ""),
        ("later", "InvoiceExtraction", "next one"),
    ]
    assert declared[1].deprecated_since is not None
    path = example_project(tmp_path)
    with path.open("a") as f:
        f.write('patches = [{id = "x", workflow_type = "Nope"}]\n')
    with pytest.raises(ProjectConfigError, match=r"modelbaton.toml: patches\[0\].workflow_type"):
        load_project(path)
    path = example_project(tmp_path)
    with path.open("a") as f:
        f.write('patches = ["x", "x"]\n')
    with pytest.raises(ProjectConfigError, match=r"patches\[1\]: patch id 'x' is named twice"):
        load_project(path)


# --- commands that need no server -------------------------------------------------------------


def test_replay_check_reads_the_config_found_in_the_working_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(EXAMPLE.parent)
    result = runner.invoke(app, ["replay-check", "--processes", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["workflows"] == ["invoice_extraction.workflow:InvoiceWorkflow"]
    assert summary["replayed"] == 5  # the files under examples/invoice_extraction/histories
    assert list(summary["by_workflow_type"]) == ["InvoiceExtraction"]


def test_replay_check_reads_modelbaton_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(
        app,
        ["replay-check", "--processes", "1", "--json"],
        env={"MODELBATON_PROJECT": str(EXAMPLE)},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["workflows"] == ["invoice_extraction.workflow:InvoiceWorkflow"]


def test_replay_check_workflows_override_a_found_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE.parent)
    result = runner.invoke(
        app,
        [
            "replay-check",
            "--workflows",
            "invoice_extraction.workflow_initial:InvoiceWorkflow",
            "--histories",
            str(EXAMPLE.parent / "histories" / "initial"),
            "--processes",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["workflows"] == ["invoice_extraction.workflow_initial:InvoiceWorkflow"]
    assert summary["replayed"] == 1


#: Every command that reads the project, with the arguments it needs to get that far.
COMMANDS = [
    ["replay-check"],
    ["patches"],
    ["status"],
    ["drain", "--from", "A"],
    ["deploy", "status"],
    ["deploy", "ramp", "A", "--percent", "5"],
    ["deploy", "promote", "A"],
    ["deploy", "rollback"],
    ["rollout", "start", "--candidate", "v2"],
    ["rollout", "set", "--fraction", "0.1"],
    ["rollout", "promote"],
    ["rollout", "abort"],
    ["rollout", "run", "PLAN"],
    ["rollout", "pause"],
    ["rollout", "resume"],
    ["rollout", "skip"],
    ["rollout", "status"],
    ["shadow", "report"],
    ["rollback"],
    ["preflight", "--candidate", "v2"],
    ["ui", "--port", "0"],
    ["schema", "check"],
]
#: Those that need the project's catalog.
CATALOG_COMMANDS = [
    c for c in COMMANDS if c[0] in {"rollout", "shadow", "rollback", "preflight", "ui"}
]


def _args(command: list[str], tmp_path: Path) -> list[str]:
    if "PLAN" in command:
        plan = tmp_path / "plan.toml"
        plan.write_text(PLAN)
        return [str(plan) if a == "PLAN" else a for a in command]
    return command


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_project_file_exits_2(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "modelbaton.toml"
    result = runner.invoke(app, [*_args(command, tmp_path), "--project", str(missing)])
    assert result.exit_code == 2, result.output
    assert one_error_line(result.stderr).endswith(f"{missing}: no such project config")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_project_naming_a_missing_module_exits_2_naming_file_and_key(
    command: list[str], tmp_path: Path
) -> None:
    module = f"no_such_module_{uuid.uuid4().hex[:6]}"
    path = example_project(tmp_path, **{"invoice_extraction.workflow:": f"{module}:"})
    result = runner.invoke(app, [*_args(command, tmp_path), "--project", str(path)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert f"{path}: workflows[0]: module '{module}' not found" in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_modelbaton_project_naming_a_missing_file_exits_2(
    command: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "gone.toml"
    result = runner.invoke(app, _args(command, tmp_path), env={"MODELBATON_PROJECT": str(missing)})
    assert result.exit_code == 2, result.output
    assert f"MODELBATON_PROJECT={missing}: no such project config" in one_error_line(result.stderr)


@pytest.mark.parametrize("command", CATALOG_COMMANDS, ids=" ".join)
def test_commands_that_need_a_catalog_refuse_the_example_which_has_none(
    command: list[str], tmp_path: Path
) -> None:
    result = runner.invoke(app, [*_args(command, tmp_path), "--project", str(EXAMPLE)])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert f"{EXAMPLE}: catalog:" in line
    assert "needs a model catalog" in line


@pytest.mark.parametrize("command", CATALOG_COMMANDS, ids=" ".join)
def test_commands_read_the_catalog_the_project_names(command: list[str], tmp_path: Path) -> None:
    # The example's config with a catalog of its own, broken on purpose: each command loads it
    # (not the reference pipeline's, which is valid) before it contacts anything.
    broken = INVOICE_CATALOG + "\n[shadow_gate]\nmin_documents = 0\n"
    path = example_project(tmp_path, catalog=broken)
    result = runner.invoke(
        app,
        [*_args(command, tmp_path), "--project", str(path)],
        env={"MODELBATON_HOME": str(tmp_path / "home")},
    )
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert f"{tmp_path / 'catalog.toml'}: [shadow_gate]: field 'min_documents'" in line


def test_modelbaton_catalog_overrides_the_project_catalog(tmp_path: Path) -> None:
    path = example_project(tmp_path, catalog=INVOICE_CATALOG)
    ctx = context(path)
    assert ctx.catalog().primary.model_id == "invoice"
    assert ctx.catalog_source == "catalog"
    other = tmp_path / "other.toml"
    other.write_text(INVOICE_CATALOG.replace('primary = "v1"', 'primary = "v2"'))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELBATON_CATALOG", str(other))
        ctx = context(path)
        assert (ctx.catalog().primary.version, ctx.catalog_source) == ("v2", "MODELBATON_CATALOG")


def test_the_dashboard_serves_the_project_queue_types_and_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server loop is the one part replaced; the app is built for real, from the config
    # baton ui passes it.
    import modelbaton.dashboard.app as dashboard

    configs: list[dashboard.UiConfig] = []
    real_create_app = dashboard.create_app

    def create_app(config: dashboard.UiConfig) -> object:
        configs.append(config)
        return real_create_app(config)

    def serve(served: object, sock: object) -> None:
        sock.close()  # type: ignore[attr-defined]
        served.state.store.close()  # type: ignore[attr-defined]

    monkeypatch.setattr(dashboard, "create_app", create_app)
    monkeypatch.setattr(dashboard, "serve", serve)
    path = example_project(tmp_path, catalog=INVOICE_CATALOG)
    result = runner.invoke(
        app,
        ["ui", "--port", "0", "--project", str(path), "--refresh", "1m"],
        env={"MODELBATON_HOME": str(tmp_path / "home")},
    )
    assert result.exit_code == 0, result.output
    (config,) = configs
    assert config.task_queue == "invoices"
    assert config.workflow_types == ("InvoiceExtraction",)
    assert config.catalog.primary.model_id == "invoice"
    assert config.refresh_seconds == 60.0


def test_schema_check_checks_the_registry_of_the_project_found_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(EXAMPLE.parent)
    result = runner.invoke(app, ["schema", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["project"] == "invoice_extraction"
    assert report["reports"][0]["name"] == "contracts 'invoice': raw output schemas"
    # At the repository root, the reference pipeline's config: the same checks on its registry,
    # with its catalog's versions first.
    monkeypatch.chdir(ROOT)
    reference = runner.invoke(app, ["schema", "check", "--json"])
    assert reference.exit_code == 0, reference.output
    checked = json.loads(reference.stdout)
    assert checked["project"] == "document_classification"
    assert [r["name"] for r in checked["reports"]][:2] == [
        "catalog versions",
        "contracts 'classification': raw output schemas",
    ]
    assert checked["models_without_model_call"] == []
