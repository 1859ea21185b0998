"""SVG charts drawn on the server: pure geometry from the view model, no JavaScript library.

Every chart states its title, its unit on the axis and the model versions in its legend, so a
screenshot reads on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelbaton.dashboard.model import AgreementPoint, FractionPoint

WIDTH = 560
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 12, 30


@dataclass(frozen=True)
class Tick:
    at: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # "x,y x,y ..." for <polyline>
    css: str
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, tooltip


@dataclass(frozen=True)
class LineChart:
    title: str
    unit: str
    width: int
    height: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series]
    #: A shaded area ("x,y ..." for <polygon>), e.g. a confidence interval; empty for none.
    band: str = ""
    band_name: str = ""
    #: A horizontal reference line (its y and its label), e.g. the gate's threshold.
    rule: tuple[float, str] | None = None
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def _x_scale(times: Sequence[datetime], now: datetime) -> tuple[datetime, float]:
    start = min(times)
    end = max([*times, now])
    span = max((end - start).total_seconds(), 1.0)
    return start, span


def _x(at: datetime, start: datetime, span: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (at - start).total_seconds() / span


def _y(value: float, low: float = 0.0, high: float = 1.0) -> float:
    value = min(max(value, low), high)
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - low) / (high - low))


def _time_ticks(start: datetime, span: float) -> list[Tick]:
    ticks = []
    for i in range(5):
        at = start + timedelta(seconds=span * i / 4)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        ticks.append(Tick(_x(at, start, span), at.strftime("%H:%M:%S"), anchor))
    return ticks


def _percent_ticks(low: float = 0.0, high: float = 1.0) -> list[Tick]:
    return [
        Tick(_y(v, low, high), f"{v:.0%}") for v in (low + (high - low) * i / 4 for i in range(5))
    ]


def fraction_chart(points: Sequence[FractionPoint], candidate: str, now: datetime) -> LineChart:
    """The candidate's share of new documents as a step line up to ``now``."""
    title = f"Share of new documents on candidate {candidate}"
    if not points:
        return LineChart(title, "%", WIDTH, HEIGHT, [], _percent_ticks(), [])
    start, span = _x_scale([p.at for p in points], now)
    coords: list[str] = []
    dots: list[tuple[float, float, str]] = []
    for i, p in enumerate(points):
        x, y = _x(p.at, start, span), _y(p.fraction)
        if i:
            coords.append(f"{x:.1f},{_y(points[i - 1].fraction):.1f}")
        coords.append(f"{x:.1f},{y:.1f}")
        dots.append((x, y, f"{p.fraction:.0%} from {p.at:%H:%M:%S} UTC"))
    coords.append(f"{_x(now, start, span):.1f},{_y(points[-1].fraction):.1f}")
    series = Series(f"candidate {candidate}", " ".join(coords), "candidate", dots)
    return LineChart(
        title, "%", WIDTH, HEIGHT, _time_ticks(start, span), _percent_ticks(), [series]
    )


def agreement_chart(
    points: Sequence[AgreementPoint], candidate: str, baseline: str, min_agreement: float
) -> LineChart:
    """Cumulative label agreement of ``candidate`` with ``baseline``, its 95 % interval shaded,
    and the gate's minimum as a rule."""
    title = f"Agreement of candidate {candidate} with baseline {baseline}"
    if not points:
        return LineChart(title, "%", WIDTH, HEIGHT, [], _percent_ticks(), [])
    start, span = _x_scale([p.at for p in points], points[-1].at)
    line = " ".join(f"{_x(p.at, start, span):.1f},{_y(p.rate):.1f}" for p in points)
    upper = [f"{_x(p.at, start, span):.1f},{_y(p.high):.1f}" for p in points]
    lower = [f"{_x(p.at, start, span):.1f},{_y(p.low):.1f}" for p in reversed(points)]
    last = points[-1]
    dots = [
        (
            _x(last.at, start, span),
            _y(last.rate),
            f"{last.rate:.1%} [{last.low:.1%}, {last.high:.1%}] over {last.n} documents",
        )
    ]
    return LineChart(
        title,
        "%",
        WIDTH,
        HEIGHT,
        _time_ticks(start, span),
        _percent_ticks(),
        [Series(f"agreement {candidate} vs {baseline}", line, "agreement", dots)],
        band=" ".join(upper + lower),
        band_name="95 % Wilson interval",
        rule=(_y(min_agreement), f"gate minimum {min_agreement:.0%}"),
    )
