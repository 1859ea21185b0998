"""Build naming: deployment names without dots, build ids, and the code version of a release."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import modelbaton
from modelbaton.errors import ConfigError
from modelbaton.versioning.builds import (
    Build,
    check_build_id,
    check_deployment_name,
    code_version,
    deployment_name_for,
)

PACKAGE = Path(modelbaton.__file__).resolve().parent


def test_deployment_name_from_a_task_queue_has_no_dot() -> None:
    assert deployment_name_for("classify.prod") == "classify-prod"
    assert deployment_name_for("tq-test_x[a b]-1") == "tq-test_x-a-b--1"
    with pytest.raises(ConfigError, match="empty deployment name"):
        deployment_name_for("...")


def test_explicit_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="must not contain a dot"):
        check_deployment_name("a.b")
    with pytest.raises(ConfigError, match="build id 'a:b'"):
        check_build_id("a:b")
    with pytest.raises(ConfigError, match="must not be empty"):
        check_build_id(" ")


def test_build_version_and_parse() -> None:
    build = Build.parse("green", "pipe")
    assert build.version == "pipe:green"
    assert build.visibility_query() == "TemporalWorkerDeploymentVersion = 'pipe:green'"
    assert Build.parse("other:blue", "pipe") == Build("other", "blue")


def test_code_version_names_the_release_and_follows_its_workflow_source(tmp_path: Path) -> None:
    assigned = code_version("assigned")
    assert assigned.startswith("assigned-")
    assert len(assigned) == len("assigned-") + 10
    assert code_version("assigned") == assigned
    assert code_version("initial") != assigned.replace("assigned", "initial")
    with pytest.raises(ConfigError, match="unknown workflow release 'nope'"):
        code_version("nope")
    copy = tmp_path / "modelbaton"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert code_version("assigned", copy) == assigned
    # A change to what every release imports is another build; the live code is only the
    # current release's.
    messages = copy / "pipeline" / "messages.py"
    original = messages.read_text()
    messages.write_text(original + "\n# changed messages are another build\n")
    assert code_version("assigned", copy) != assigned
    messages.write_text(original)
    live = copy / "pipeline" / "workflow.py"
    live.write_text(live.read_text() + "\n# today's code changed\n")
    assert code_version("assigned", copy) == assigned
    assert code_version("shadow", copy) != code_version("shadow")
    activities = copy / "pipeline" / "activities.py"
    activities.write_text(activities.read_text() + "\n# activities do not change the build\n")
    assert code_version("assigned", copy) == assigned
