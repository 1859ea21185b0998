"""Which raw output schemas a new workflow on each release can classify with.

``tests/integration/test_restored.py`` measures the same table on the real server and model
server; this checks the declarations ``serves_schema`` reads.
"""

from __future__ import annotations

import pytest

from modelbaton.pipeline.releases import RELEASES, serves_schema

SERVED = {
    "initial": {1},
    "patched": {2},
    "deprecated": {2},
    "complete": {2},
    "assigned": {1, 2},
    "shadow": {1, 2},
    "restored": {1, 2},
}


def test_every_release_declares_its_schemas() -> None:
    assert set(SERVED) == set(RELEASES)


@pytest.mark.parametrize("release", sorted(SERVED))
def test_serves_schema_reads_the_release_declaration(release: str) -> None:
    for schema in (1, 2, 3):
        assert serves_schema(release, schema) is (schema in SERVED[release]), (release, schema)


def test_scenario_c_complete_cannot_serve_schema_1_and_restored_can() -> None:
    assert not serves_schema("complete", 1)
    assert serves_schema("restored", 1)
    assert serves_schema("restored", 2)


def test_an_unknown_release_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        serves_schema("nope", 1)
