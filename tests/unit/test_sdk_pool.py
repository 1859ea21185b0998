"""Pool workers refuse what is not an activity before any worker starts."""

from __future__ import annotations

from typing import cast

import pytest
from temporalio.client import Client

from modelbaton import ConfigError, pool_worker


def not_an_activity() -> None:
    """A plain function: no @activity.defn."""


def test_a_pool_needs_activities() -> None:
    with pytest.raises(ConfigError, match="the pool of v1 needs at least one activity"):
        pool_worker(cast(Client, None), "q", "v1", [])


def test_a_pool_refuses_a_plain_function() -> None:
    with pytest.raises(ConfigError, match=r"not_an_activity is not an @activity\.defn"):
        pool_worker(cast(Client, None), "q", "v1", [not_an_activity])
