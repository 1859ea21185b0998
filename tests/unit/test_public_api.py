"""The public face: every name in modelbaton.__all__ resolves, and nothing else is offered."""

from __future__ import annotations

import subprocess
import sys

import pytest

import modelbaton


def test_every_public_name_resolves() -> None:
    missing = [n for n in modelbaton.__all__ if getattr(modelbaton, n, None) is None]
    assert missing == []


def test_all_lists_exactly_the_exports() -> None:
    assert set(modelbaton.__all__) == set(modelbaton._EXPORTS) | {"__version__"}


def test_a_private_name_is_not_offered() -> None:
    with pytest.raises(AttributeError, match="no attribute 'normalize_v1'"):
        modelbaton.normalize_v1  # noqa: B018


def test_importing_the_package_stays_cheap() -> None:
    heavy = "('temporalio', 'sqlalchemy', 'sklearn')"
    code = f"import sys, modelbaton; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
