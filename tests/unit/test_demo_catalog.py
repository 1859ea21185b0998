"""The demo's catalog: the packaged one plus v4, with the shadow gate's latency ratio the demo's
one-server setup can meet; a packaged catalog without that key is refused, not half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelbaton.demo.bad_candidate import DEMO_SHADOW_LATENCY_RATIO, demo_catalog
from modelbaton.errors import ConfigError
from modelbaton.models.catalog import load_catalog

PACKAGED = Path(__file__).parents[2] / "src" / "modelbaton" / "models" / "catalog.toml"


def test_the_demo_catalog_adds_v4_and_loosens_only_the_shadow_latency(tmp_path: Path) -> None:
    packaged = load_catalog(PACKAGED)
    assert packaged.shadow_gate.max_p95_latency_ratio == 1.5
    demo = load_catalog(demo_catalog(tmp_path, PACKAGED))
    assert demo.shadow_gate.max_p95_latency_ratio == DEMO_SHADOW_LATENCY_RATIO == 3.0
    assert (
        demo.shadow_gate.model_copy(update={"max_p95_latency_ratio": 1.5}) == packaged.shadow_gate
    )
    assert [e.config.version for e in demo.entries] == [
        *(e.config.version for e in packaged.entries),
        "v4",
    ]


def test_a_catalog_without_the_key_is_refused(tmp_path: Path) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text(PACKAGED.read_text().replace("max_p95_latency_ratio", "# removed"))
    home = tmp_path / "home"
    home.mkdir()
    with pytest.raises(ConfigError, match="max_p95_latency_ratio"):
        demo_catalog(home, bare)
    assert not (home / "catalog.toml").exists()
