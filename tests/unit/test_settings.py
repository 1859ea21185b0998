"""Settings: one pydantic-settings model reads every MODELBATON_* variable, names a wrong one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelbaton.errors import ConfigError
from modelbaton.settings import Settings

VARIABLES = (
    "HOME",
    "CATALOG",
    "DATABASE_URL",
    "TASK_QUEUE",
    "MODEL_BASE_URL",
    "CACHE_DIR",
    "POOL_LIVENESS_SECONDS",
    "TEMPORAL_UI_URL",
    "UI_TOKEN",
    "PROJECT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(f"MODELBATON_{name}", raising=False)


def test_the_database_and_cache_default_to_files_under_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELBATON_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("MODELBATON_CACHE_DIR", "")  # empty means unset, as before
    s = Settings.from_env()
    assert s.home == tmp_path / "state"
    assert s.database_url == f"sqlite:///{tmp_path}/state/results.db"
    assert s.cache_dir == tmp_path / "state" / "cache"
    assert s.task_queue == "modelbaton-classify"
    assert s.catalog_path.name == "catalog.toml"
    assert s.model_base_url is None
    assert s.ui_token is None
    assert s.pool_liveness_seconds == 4.5


def test_each_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "CATALOG": "cat.toml",
        "DATABASE_URL": "postgresql://h/db",
        "TASK_QUEUE": "q",
        "MODEL_BASE_URL": "http://m:1",
        "CACHE_DIR": str(tmp_path / "c"),
        "POOL_LIVENESS_SECONDS": "60",
        "TEMPORAL_UI_URL": "http://ui:2",
        "UI_TOKEN": "t",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"MODELBATON_{name}", value)
    s = Settings.from_env()
    got = (
        s.catalog_path,
        s.database_url,
        s.task_queue,
        s.model_base_url,
        s.cache_dir,
        s.pool_liveness_seconds,
        s.temporal_ui_url,
        s.ui_token,
    )
    assert got == (
        Path("cat.toml"),
        "postgresql://h/db",
        "q",
        "http://m:1",
        tmp_path / "c",
        60.0,
        "http://ui:2",
        "t",
    )


@pytest.mark.parametrize(
    ("value", "says"), [("abc", "valid number"), ("-1", "greater than 0"), ("0", "greater than 0")]
)
def test_a_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("MODELBATON_POOL_LIVENESS_SECONDS", value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert message.startswith(f"environment variable MODELBATON_POOL_LIVENESS_SECONDS={value!r}")
    assert says in message
    assert "\n" not in message


def test_the_cli_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "baton"), "rollout", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "MODELBATON_POOL_LIVENESS_SECONDS": "abc"},
    )
    assert done.returncode == 2, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines == [
        "error: environment variable MODELBATON_POOL_LIVENESS_SECONDS='abc': Input should be a "
        "valid number, unable to parse string as a number"
    ]


def test_src_reads_no_environment_but_through_settings() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "modelbaton"
    readers = sorted(
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if "os.environ" in p.read_text() and p.name != "settings.py"
    )
    # Each remaining reader passes the environment on to a child process, or reads a secret
    # whose variable name the user chose (a model endpoint's auth_token_env).
    assert readers == [
        "cli/models.py",
        "demo/blue_green.py",
        "models/client.py",
        "stack/layout.py",
    ]
