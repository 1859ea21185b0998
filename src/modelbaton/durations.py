"""Durations, in one format everywhere: the ``baton`` options and the rollout plan TOML.

``30s``, ``5m``, ``24h``, ``7d``, ``500ms``, combinations such as ``1h30m``, decimals such as
``1.5h``; a plain number (``90``, or ``"90"`` on the command line) means seconds, as plan files
and numeric options always accepted. This module imports nothing of modelbaton, so every layer
may use it.
"""

from __future__ import annotations

import re

#: Seconds per unit.
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
EXAMPLES = "30s, 5m, 24h or 1h30m"
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(value: object, *, positive: bool = False) -> float:
    """Seconds in ``value``; ``ValueError`` (a message without the option's name) otherwise.

    Negative durations are refused; with ``positive``, zero is refused too.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as {EXAMPLES}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"expected a duration such as {EXAMPLES}, got {value!r}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite duration, got {value!r}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    if positive and seconds == 0:
        raise ValueError(f"must be positive, got {value!r}")
    return seconds


def _parse_text(value: str) -> float:
    text = value.strip().lower().replace(" ", "")
    if _NUMBER.fullmatch(text):
        return float(text)
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected a duration such as {EXAMPLES}, got {value!r}")
    units = [u for _, u in parts]
    if len(set(units)) != len(units):
        raise ValueError(f"expected a duration naming each unit once, got {value!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """The shortest text of whole units that parses back to ``seconds`` (``5400`` -> ``1h30m``)."""
    if seconds != int(seconds) or seconds < 1:
        return f"{seconds:g}s"
    rest = int(seconds)
    out = ""
    for unit in ("d", "h", "m", "s"):
        size = int(UNITS[unit])
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out
