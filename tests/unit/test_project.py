"""The project config: loading the example's and the reference pipeline's, every bad input as
one line naming the file and the key, and the two commands that read it (exit 2 on bad input)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelbaton import Project, ProjectConfigError, load_project
from modelbaton.app.main import baton as app
from modelbaton.project import find_config

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "invoice_extraction" / "modelbaton.toml"
runner = CliRunner()

GOOD_MODULE = """
from pydantic import BaseModel
from temporalio import activity, workflow
from modelbaton import ContractRegistry

class Out(BaseModel):
    x: int

class RawV1(BaseModel):
    x: int

CONTRACTS = ContractRegistry("tiny", canonical=Out)
CONTRACTS.register(1, RawV1, lambda raw: Out(x=raw.x))
NOT_A_REGISTRY = 3

@activity.defn(name="tiny_act")
async def act(x: RawV1) -> Out:
    return Out(x=x.x)

@workflow.defn(name="Tiny")
class TinyWorkflow:
    @workflow.run
    async def run(self, x: RawV1) -> Out:
        return Out(x=x.x)

class NotAWorkflow:
    pass

@workflow.defn(name="TakesText")
class TakesText:
    @workflow.run
    async def run(self, text: str) -> str:
        return text
"""


@pytest.fixture
def pkg(tmp_path: Path) -> str:
    """A fresh importable package under tmp_path (unique name: sys.modules caches imports)."""
    name = f"userpkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "pipeline.py").write_text(GOOD_MODULE)
    (tmp_path / name / "twice.py").write_text(
        GOOD_MODULE + "\nCONTRACTS.register(1, RawV1, lambda raw: Out(x=0))\n"
    )
    (tmp_path / "histories").mkdir()
    return name


def write(tmp_path: Path, pkg: str, **override: object) -> Path:
    keys: dict[str, object] = {
        "name": "tiny",
        "task_queue": "tiny-q",
        "python_path": ["."],
        "workflows": [f"{pkg}.pipeline:TinyWorkflow"],
        "activity_modules": [f"{pkg}.pipeline"],
        "contracts": f"{pkg}.pipeline:CONTRACTS",
        "histories": "histories",
    }
    keys |= override
    lines = [f"{k} = {json.dumps(v)}" for k, v in keys.items() if v is not None]
    path = tmp_path / "modelbaton.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_user_project_loads_with_everything_it_names(tmp_path: Path, pkg: str) -> None:
    project = load_project(write(tmp_path, pkg))
    assert isinstance(project, Project)
    assert project.task_queue == "tiny-q"
    assert [c.__name__ for c in project.workflows] == ["TinyWorkflow"]
    assert project.workflow_types == ["Tiny"]
    assert project.contracts.name == "tiny"
    assert project.histories_path == tmp_path / "histories"


def test_the_example_and_the_reference_pipeline_have_their_own_configs() -> None:
    example = load_project(EXAMPLE)
    assert example.workflow_types == ["InvoiceExtraction"]
    assert example.contracts.versions == [1, 2]
    reference = load_project(ROOT / "modelbaton.toml")
    assert reference.workflow_types == ["DocumentClassificationWorkflow"]
    assert reference.contracts.name == "classification"
    assert reference.catalog_path is not None
    assert reference.catalog_path.is_file()


def test_the_spec_of_each_project_is_read_from_its_config_and_code() -> None:
    from invoice_extraction.messages import InvoiceInput
    from modelbaton.pipeline.messages import ClassifyDocumentInput
    from modelbaton.rollout.spec import reference_spec

    example = load_project(EXAMPLE).spec()
    assert (example.workflow_type, example.input_type) == ("InvoiceExtraction", InvoiceInput)
    assert example.schema_versions == frozenset({1, 2})  # the registry's: the config says none
    assert example.workflows == ("invoice_extraction.workflow:InvoiceWorkflow",)
    # No patches key: those the workflow code names, found in its source.
    assert [p.patch_id for p in example.patches or ()] == [
        "invoice-assigned-model",
        "invoice-record-comparison",
    ]
    reference = load_project(ROOT / "modelbaton.toml").spec()
    built_in = reference_spec()
    assert reference.input_type is ClassifyDocumentInput
    assert example.review is None  # no invoice is marked as a person's
    assert reference.review is not None
    assert (reference.review.attribute, reference.review.waiting) == ("ReviewState", "pending")
    for name in (
        "workflow_type",
        "input_type",
        "contracts",
        "schema_versions",
        "workflows",
        "review",
    ):
        assert getattr(reference, name) == getattr(built_in, name), name
    assert {p.patch_id for p in reference.patches or ()} == {
        p.patch_id for p in built_in.patches or ()
    }


def test_a_spec_needs_a_pydantic_input_and_reads_the_schema_versions_key(
    tmp_path: Path, pkg: str
) -> None:
    narrowed = load_project(write(tmp_path, pkg, schema_versions=[1])).spec()
    assert narrowed.schema_versions == frozenset({1})
    path = write(tmp_path, pkg, workflows=[f"{pkg}.pipeline:TakesText"])
    with pytest.raises(ProjectConfigError) as err:
        load_project(path).spec()
    assert str(err.value).startswith(f"{path}: workflows[0]: {pkg}.pipeline:TakesText: ")
    assert "one pydantic model" in str(err.value)


def test_pyproject_tool_table_is_found_from_a_subfolder(tmp_path: Path, pkg: str) -> None:
    body = write(tmp_path, pkg).read_text()
    (tmp_path / "modelbaton.toml").unlink()
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n\n[tool.modelbaton]\n" + body)
    (tmp_path / "sub").mkdir()
    found = find_config(tmp_path / "sub")
    assert found == tmp_path / "pyproject.toml"
    assert load_project(found).name == "tiny"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"task_queue": None}, "task_queue: required key is missing"),
        ({"task_queue": "has space"}, "task_queue: 'has space' is not a valid task queue name"),
        ({"workflows": ["nosuchmod_xyz.wf:W"]}, "workflows[0]: module 'nosuchmod_xyz.wf' not"),
        ({"workflows": ["{pkg}.pipeline:Missing"]}, "workflows[0]: module '{pkg}.pipeline' has no"),
        ({"workflows": ["{pkg}.pipeline:NotAWorkflow"]}, "workflows[0]: '{pkg}.pipeline:NotAWo"),
        ({"workflows": ["no_colon"]}, "workflows[0]: 'no_colon' is not of the form module:name"),
        ({"workflows": []}, "workflows: List should have at least 1 item"),
        ({"activity_modules": ["nosuchmod_xyz"]}, "activity_modules[0]: module 'nosuchmod_xyz'"),
        ({"contracts": "{pkg}.pipeline:NOT_A_REGISTRY"}, "is a int, not a ContractRegistry"),
        (
            {"contracts": "{pkg}.twice:CONTRACTS"},
            "contracts: contracts 'tiny': output schema v1 is registered twice",
        ),
        ({"histories": "gone"}, "gone does not exist"),
        ({"python_path": ["nowhere"]}, "python_path[0]: 'nowhere' is not a folder"),
        ({"extra_key": 1}, "extra_key: unknown key"),
        ({"schema_versions": [1, 7]}, "schema_versions[1]: output schema v7 is not in"),
        ({"review_attribute": ""}, "review_attribute: String should have at least 1 character"),
        ({"review_attribute": "Review State"}, "review_attribute: String should match pattern"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, pkg: str, override: dict[str, object], message: str
) -> None:
    fixed = {
        k: (v.replace("{pkg}", pkg) if isinstance(v, str) else v)
        if not isinstance(v, list)
        else [x.replace("{pkg}", pkg) if isinstance(x, str) else x for x in v]
        for k, v in override.items()
    }
    path = write(tmp_path, pkg, **fixed)
    with pytest.raises(ProjectConfigError) as err:
        load_project(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert message.replace("{pkg}", pkg) in text
    assert "\n" not in text


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ProjectConfigError, match="no such project config"):
        load_project(tmp_path / "modelbaton.toml")
    bad = tmp_path / "modelbaton.toml"
    bad.write_text("name = [")
    with pytest.raises(ProjectConfigError, match="not valid TOML"):
        load_project(bad)
    py = tmp_path / "pyproject.toml"
    py.write_text("[project]\nname = 'x'\n")
    with pytest.raises(ProjectConfigError, match=r"no \[tool.modelbaton\] table"):
        load_project(py)


def test_replay_check_reads_the_project() -> None:
    result = runner.invoke(
        app, ["replay-check", "--project", str(EXAMPLE), "--processes", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["replayed"] == 5  # the files under examples/invoice_extraction/histories
    assert summary["failed"] == 0
    assert summary["workflows"] == ["invoice_extraction.workflow:InvoiceWorkflow"]


def test_replay_check_with_the_project_fails_on_a_history_its_code_cannot_replay(
    tmp_path: Path,
) -> None:
    # The example's project with the first release's code: it cannot replay release 2's
    # histories (they call the model through the assigned pool): the four of release 2 fail,
    # the one release 1 recorded passes. The gate must say so.
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLE.parent / "histories", folder / "histories")
    (folder / "modelbaton.toml").write_text(
        EXAMPLE.read_text()
        .replace('python_path = [".."]', f'python_path = ["{EXAMPLE.parents[1]}"]')
        .replace("invoice_extraction.workflow:", "invoice_extraction.workflow_initial:")
    )
    result = runner.invoke(
        app, ["replay-check", "--project", str(folder / "modelbaton.toml"), "--processes", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "replayed 5: 1 passed, 4 failed" in result.stdout


def test_schema_check_reads_the_project() -> None:
    result = runner.invoke(app, ["schema", "check", "--project", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["project"] == "invoice_extraction"
    (pair,) = report["reports"][0]["pairs"]
    assert (pair["old"], pair["new"]) == ("schema:1", "schema:2")
    assert not pair["full_ok"]
    assert pair["covered_by_normalizers"]
    (hist,) = report["histories"].values()
    assert hist["ok"]
    assert hist["histories"] == 5
    strict = runner.invoke(app, ["schema", "check", "--project", str(EXAMPLE), "--strict"])
    assert strict.exit_code == 1


def test_schema_diff_reads_the_projects_registry() -> None:
    args = ["schema", "diff", "schema:1", "schema:2", "--project", str(EXAMPLE)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output  # breaking, and covered by the normalizers
    pair = json.loads(result.stdout)
    assert pair["covered_by_normalizers"]
    assert "from_v1 and from_v2 both produce the canonical Invoice" in pair["coverage"]
    assert {c["path"] for c in pair["changes"]} >= {"/total", "/amount"}
    assert runner.invoke(app, [*args, "--strict"]).exit_code == 1
    # The example's config names no catalog: catalog versions are unknown, raw schemas known.
    unknown = runner.invoke(app, ["schema", "diff", "v1", "v2", "--project", str(EXAMPLE)])
    assert unknown.exit_code == 2
    assert "unknown version 'v1' (known: schema:1, schema:2)" in unknown.stderr
    missing = runner.invoke(
        app, ["schema", "diff", "schema:1", "schema:7", "--project", str(EXAMPLE)]
    )
    assert missing.exit_code == 2
    assert "output schema version 7 is not registered in contracts 'invoice'" in missing.stderr


@pytest.mark.parametrize("command", [["replay-check"], ["schema", "check"]])
def test_a_bad_project_exits_2_with_one_line(tmp_path: Path, pkg: str, command: list[str]) -> None:
    path = write(tmp_path, pkg, contracts=f"{pkg}.twice:CONTRACTS")
    result = runner.invoke(app, [*command, "--project", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "output schema v1 is registered twice" in lines[0]
    assert "Traceback" not in result.output


def test_replay_check_refuses_project_with_workflows(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay-check", "--project", str(EXAMPLE), "--workflows", "a.b:C"])
    assert result.exit_code == 2
    assert "give --project or --workflows/--release, not both" in result.stderr


def test_schema_check_history_that_does_not_decode_fails(tmp_path: Path) -> None:
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLE.parent / "histories", folder / "histories")
    target = next((folder / "histories" / "assigned").glob("*.json"))
    # A history whose workflow input lost its document: today's InvoiceInput requires it.
    doc = json.loads(target.read_text())
    attrs = doc["events"][0]["workflowExecutionStartedEventAttributes"]
    attrs["input"]["payloads"][0]["data"] = "eyJhc3NpZ25tZW50IjpudWxsfQ=="  # {"assignment":null}
    target.write_text(json.dumps(doc))
    (folder / "modelbaton.toml").write_text(
        EXAMPLE.read_text().replace(
            'python_path = [".."]', f'python_path = ["{EXAMPLE.parents[1]}"]'
        )
    )
    result = runner.invoke(
        app, ["schema", "check", "--project", str(folder / "modelbaton.toml"), "--json"]
    )
    assert result.exit_code == 1, result.output
    (hist,) = json.loads(result.stdout)["histories"].values()
    assert len(hist["failures"]) == 1
    assert "InvoiceExtraction input" in hist["failures"][0]


def test_the_projects_catalog_is_checked_against_the_projects_contracts(
    tmp_path: Path, pkg: str
) -> None:
    from modelbaton.cli._project import context as command_context
    from modelbaton.errors import CatalogError

    # The reference registry knows schema 2; this project's registry ('tiny') only knows 1.
    (tmp_path / "catalog.toml").write_text(
        '[pipeline]\nprimary = "t1"\n\n[[models]]\nmodel_id = "tiny"\nversion = "t1"\n'
        'endpoint = "/t/classify"\noutput_schema_version = 2\nlabels = ["a", "b"]\n'
    )
    path = write(tmp_path, pkg, catalog="catalog.toml")
    with pytest.raises(CatalogError, match=r"not registered in contracts 'tiny' \(known: 1\)"):
        command_context(path).catalog()
