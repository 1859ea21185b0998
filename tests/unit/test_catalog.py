"""Catalog loading: every error names the file, the entry and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelbaton.contracts import normalize
from modelbaton.errors import CatalogError
from modelbaton.models.catalog import load_catalog

GOOD = """
[server]
base_url = "http://10.0.0.5:9000"

[pipeline]
primary = "a1"
default_route = "triage"

[pipeline.routes]
cat = "animals"

[[models]]
model_id = "pets"
version = "a1"
endpoint = "/pets/classify"
output_schema_version = 2
labels = ["cat", "dog", "parrot"]
timeout_seconds = 3
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "catalog.toml"
    p.write_text(text)
    return p


def test_a_users_own_classes_work_through_the_catalog_alone(tmp_path: Path) -> None:
    cat = load_catalog(write(tmp_path, GOOD))
    cfg = cat.primary
    assert cfg.endpoint == "http://10.0.0.5:9000/pets/classify"
    assert cfg.labels == ("cat", "dog", "parrot")
    raw = {
        "label": "dog",
        "confidence": 0.8,
        "raw_scores": [0.1, 0.8, 0.1],
        "class_order": ["cat", "dog", "parrot"],
    }
    assert normalize(raw, cfg).scores_by_class["dog"] == 0.8
    assert cat.pipeline.route_for("cat") == "animals"
    assert cat.pipeline.route_for("dog") == "triage"


def test_base_url_override(tmp_path: Path) -> None:
    cat = load_catalog(write(tmp_path, GOOD), base_url="http://127.0.0.1:1234")
    assert cat.primary.endpoint == "http://127.0.0.1:1234/pets/classify"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("timeout_seconds = 3", "timeout_seconds = -1"),
            r"entry 1 \(version 'a1'\): field 'timeout_seconds'",
        ),
        (("timeout_seconds = 3", "colour = 'red'"), r"entry 1 \(version 'a1'\): unknown field"),
        (("[server]", "[servr]"), r"top level: unknown key\(s\) \['servr'\]"),
        (("[server]", "colour = 'red'\n[server]"), r"top level: unknown key\(s\) \['colour'\]"),
        (
            ("output_schema_version = 2", "output_schema_version = 7"),
            r"field 'output_schema_version'.*not registered",
        ),
        (('endpoint = "/pets/classify"', 'endpoint = "ftp://x/y"'), r"field 'endpoint'"),
        (('labels = ["cat", "dog", "parrot"]', 'labels = ["cat", "cat"]'), r"field 'labels'"),
        (('primary = "a1"', 'primary = "zz"'), r"\[pipeline\]: field 'primary': 'zz'"),
        (
            ('primary = "a1"', 'primary = "a1"\nreview_threshold = 2'),
            r"\[pipeline\]: field 'review_threshold'",
        ),
    ],
)
def test_errors_name_file_entry_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(CatalogError, match=re.escape(str(path)) + ".*" + message):
        load_catalog(path)


def test_duplicate_version(tmp_path: Path) -> None:
    entry = GOOD[GOOD.index("[[models]]") :]
    path = write(tmp_path, GOOD + entry)
    with pytest.raises(CatalogError, match=r"entry 2: duplicate version 'a1'"):
        load_catalog(path)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(write(tmp_path, "[[models]\n"))
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "missing.toml")


def test_missing_pipeline_and_models(tmp_path: Path) -> None:
    no_pipeline = GOOD[: GOOD.index("[pipeline]")] + GOOD[GOOD.index("[[models]]") :]
    with pytest.raises(CatalogError, match=r"\[pipeline\]: table is required"):
        load_catalog(write(tmp_path, no_pipeline))
    with pytest.raises(CatalogError, match="at least one model version"):
        load_catalog(write(tmp_path, "[pipeline]\nprimary='x'\n"))


def test_output_schema_versions_are_checked_against_the_projects_registry(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from modelbaton import ContractRegistry

    class Out(BaseModel):
        total: float

    class RawV3(BaseModel):
        total: float

    contracts: ContractRegistry[Out] = ContractRegistry("invoice-like", canonical=Out)
    contracts.register(3, RawV3, lambda raw: Out(total=raw.total))
    v3 = write(tmp_path, GOOD.replace("output_schema_version = 2", "output_schema_version = 3"))
    # The reference registry has no v3; the project's has, and only the project's counts.
    with pytest.raises(CatalogError, match="output schema version 3 is not registered"):
        load_catalog(v3)
    assert load_catalog(v3, contracts=contracts).get("a1").output_schema_version == 3
    with pytest.raises(CatalogError) as err:
        load_catalog(write(tmp_path, GOOD), contracts=contracts)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'catalog.toml'}: [[models]] entry 1 (version 'a1'): ")
    assert "field 'output_schema_version': output schema version 2 is not registered in " in message
    assert "'invoice-like' (known: 3)" in message
