"""A rollout plan in TOML: the steps a controller drives a candidate through, and its gates.

    candidate = "v3"
    on_failure = "restart-on-baseline"   # or "rerun-on-baseline", "let-finish"

    [gates]
    alpha = 0.05                         # error level of the canary gates together
    max_failure_rate_increase = 0.05     # candidate minus baseline, failures and retrying
    waive = ["reviewed_accuracy"]        # gates that may stay inconclusive (they can still fail)

    [[steps]]
    kind = "shadow"                      # the candidate answers a sample, for comparison only
    sample = 0.5
    documents = 100                      # comparisons needed before the shadow verdict counts
    max_wait = "30m"                     # then the controller pauses for a person

    [[steps]]
    kind = "canary"                      # a share of documents runs on the candidate
    fraction = 0.05
    bake = "5m"                          # at least this long, and
    min_documents = 50                   # at least this many candidate documents, before passing

    [[steps]]
    kind = "promote"

Each canary gate is an anytime-valid confidence sequence on the candidate-minus-baseline
difference of its measure (see ``modelbaton.controller.gates``), judged against its tolerance: it
FAILS when the interval lies wholly beyond the tolerance, PASSES only when it lies wholly within,
and is otherwise inconclusive (after ``max_wait`` the controller pauses for a person). ``alpha``
is shared equally by the canary gates that are on (Bonferroni), so the chance that any of them
ever wrongly fails a candidate as good as the baseline, however often the controller looks, is
at most ``alpha``. A gate named in ``waive`` may stay inconclusive without holding the step (it
still fails on evidence, and the audit trail marks it waived); every canary step also needs
``min_documents`` candidate documents. Gate names for ``waive``: ``failure_rate``,
``p95_latency``, ``review_share``, ``reviewed_accuracy``, ``agreement``.

Teams add their own checks: ``[gates] webhook = URL`` (the team's approval or metric check
answers each canary measurement) and ``[gates.prometheus]`` (PromQL per arm, see
:class:`PrometheusGate`)::

    [gates.prometheus]
    url = "http://prometheus:9090"
    [[gates.prometheus.checks]]
    name = "extract errors"
    query = 'sum(rate(extract_errors_total{model_version="$version"}[5m]))'
    max_increase = 0.01

Durations are numbers of seconds or strings such as ``"90s"``, ``"5m"``, ``"1h30m"``
(``modelbaton.durations``, the parser of every ``baton`` duration option too). Every error
names the file, the step and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from modelbaton.durations import parse_duration
from modelbaton.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _seconds(v: object) -> float:
    return parse_duration(v)


class ShadowStep(_Strict):
    """The candidate shadows ``sample`` of the documents until ``documents`` comparisons (or
    ``duration`` seconds) are in; the shadow verdict gates the next step."""

    kind: Literal["shadow"]
    sample: float = Field(default=1.0, gt=0.0, le=1.0)
    noise_sample: float = Field(default=0.05, ge=0.0, le=1.0)
    documents: int = Field(default=100, ge=1)
    duration: float = Field(default=0.0, ge=0.0, description="Seconds the shadow runs at least")
    max_wait: float = Field(default=3600.0, gt=0.0)
    budget: float = Field(default=60.0, gt=0.0, description="Seconds a shadow call may take")

    _durations = field_validator("duration", "max_wait", "budget", mode="before")(_seconds)


class CanaryStep(_Strict):
    """``fraction`` of the documents runs on the candidate for at least ``bake`` seconds and
    ``min_documents`` candidate documents before the gates may pass."""

    kind: Literal["canary"]
    fraction: float = Field(gt=0.0, le=1.0)
    bake: float = Field(default=300.0, ge=0.0)
    min_documents: int = Field(default=20, ge=1)
    max_wait: float = Field(default=3600.0, gt=0.0)
    #: Share of each arm's documents the baseline also answers, off the primary path: the
    #: candidate's agreement with the baseline against the baseline's with itself, which the
    #: agreement gate (``max_agreement_drop``) judges without waiting for reviews.
    compare_sample: float = Field(default=0.0, ge=0.0, le=1.0)

    _durations = field_validator("bake", "max_wait", mode="before")(_seconds)


class PromoteStep(_Strict):
    """The candidate becomes the baseline of every new document."""

    kind: Literal["promote"]


class DrainStep(_Strict):
    """Wait until no document still runs on the old baseline, up to ``deadline``."""

    kind: Literal["drain"]
    deadline: float = Field(default=3600.0, gt=0.0)
    on_deadline: Literal["wait", "report", "terminate"] = "report"

    _durations = field_validator("deadline", mode="before")(_seconds)


Step = Annotated[ShadowStep | CanaryStep | PromoteStep | DrainStep, Field(discriminator="kind")]


def _off(v: object) -> object:
    """``false`` in TOML (which has no null) turns a gate off."""
    return None if v is False else v


WAIVABLE = ("failure_rate", "p95_latency", "review_share", "reviewed_accuracy", "agreement")


def _http_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


class PrometheusCheck(_Strict):
    """One PromQL query, asked once per arm (``$version``: the arm's model version or build,
    ``$pool_queue``: its pool's task queue), and the most the candidate's value may exceed the
    baseline's by: ``max_increase`` (candidate minus baseline) or ``max_ratio`` (candidate over
    baseline). The query must come to one number per arm (sum it)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_. -]+$")
    query: str = Field(min_length=1)
    max_increase: float | None = Field(default=None, ge=0.0)
    max_ratio: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _one_limit(self) -> PrometheusCheck:
        if (self.max_increase is None) == (self.max_ratio is None):
            raise ValueError(f"check {self.name!r}: give one of max_increase and max_ratio")
        return self


class PrometheusGate(_Strict):
    """Checks against the team's Prometheus: each one more canary gate (not a sequential test:
    a threshold on what Prometheus computes, its windows the query's). No value, an error or an
    unreachable server is inconclusive, never a pass."""

    url: str
    timeout: float = Field(default=5.0, gt=0.0, le=60.0)
    checks: list[PrometheusCheck] = Field(min_length=1)

    _durations = field_validator("timeout", mode="before")(_seconds)
    _url = field_validator("url")(_http_url)

    @field_validator("checks")
    @classmethod
    def _distinct(cls, checks: list[PrometheusCheck]) -> list[PrometheusCheck]:
        names = [c.name for c in checks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"check name {twice[0]!r} is used twice")
        return checks


class Gates(_Strict):
    """Tolerances of the gates; ``false`` (or ``None``) turns a gate off."""

    alpha: float = Field(
        default=0.05,
        gt=0.0,
        le=0.5,
        description="Error level of the canary gates together, split equally among those on",
    )
    waive: tuple[str, ...] = Field(
        default=(), description="Gates that need not pass (they still fail on evidence)"
    )

    max_failure_rate_increase: float | None = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Candidate share of failed or retrying documents minus the baseline's",
    )
    max_stuck: int | None = Field(
        default=0, ge=0, description="Candidate workflows stuck on workflow-task problems"
    )
    max_p95_latency_ratio: float | None = Field(
        default=3.0, gt=0.0, description="Candidate p95 start-to-close latency over the baseline's"
    )
    max_review_share_increase: float | None = Field(
        default=0.2, ge=0.0, le=1.0, description="Candidate share sent to review minus baseline's"
    )
    max_accuracy_drop: float | None = Field(
        default=0.05, ge=0.0, le=1.0, description="Baseline minus candidate accuracy on reviews"
    )
    max_agreement_drop: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Baseline's agreement with itself minus the candidate's with the baseline, "
        "on the canary arms' compared documents (off until the arms are compared)",
    )
    min_reviewed: int = Field(
        default=20, ge=1, description="Reviewed documents per arm before accuracy is judged"
    )
    require_shadow_ready: bool = True
    retrying_after: float = Field(
        default=10.0, ge=0.0, description="Seconds a classify attempt may keep failing unnoticed"
    )
    webhook: str | None = Field(
        default=None,
        description="URL the controller POSTs each canary measurement to; its answer (pass, fail "
        "or inconclusive) is one more gate, and no answer is inconclusive",
    )
    webhook_timeout: float = Field(
        default=5.0, gt=0.0, le=60.0, description="Seconds the webhook may take to answer"
    )
    prometheus: PrometheusGate | None = Field(
        default=None,
        description="PromQL checks per arm against the team's Prometheus, each one more gate",
    )

    _durations = field_validator("retrying_after", "webhook_timeout", mode="before")(_seconds)
    _http = field_validator("webhook")(_http_url)

    _switches = field_validator(
        "max_failure_rate_increase",
        "max_stuck",
        "max_p95_latency_ratio",
        "max_review_share_increase",
        "max_accuracy_drop",
        "max_agreement_drop",
        mode="before",
    )(_off)

    @field_validator("waive")
    @classmethod
    def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [n for n in names if n not in WAIVABLE]
        if unknown:
            raise ValueError(f"cannot waive {unknown[0]!r}: the gates are {', '.join(WAIVABLE)}")
        return names


class RolloutPlanFile(_Strict):
    """A whole plan as read from TOML.

    ``strategy = "pools"`` (default): ``candidate`` is a catalog model version and canary steps
    set the share of business keys its pool serves. ``strategy = "builds"``: ``candidate`` is a
    Worker Deployment build id of the pipeline's deployment (``deployment``, default: derived
    from the task queue) and canary steps set Temporal's ramp percentage to it; promote makes it
    current.
    """

    candidate: str = Field(min_length=1)
    strategy: Literal["pools", "builds"] = "pools"
    deployment: str | None = Field(default=None, min_length=1, pattern=r"^[^.]+$")
    #: ``rerun-on-baseline`` also runs the candidate's completed documents again on the
    #: baseline: for a candidate whose answers are wrong, not merely failing (agreement).
    on_failure: Literal["restart-on-baseline", "rerun-on-baseline", "let-finish"] = (
        "restart-on-baseline"
    )
    poll: float = Field(default=5.0, gt=0.0, description="Seconds between gate measurements")
    gates: Gates = Field(default_factory=Gates)
    steps: list[Step] = Field(min_length=1)

    _durations = field_validator("poll", mode="before")(_seconds)

    @model_validator(mode="after")
    def _strategy(self) -> RolloutPlanFile:
        if self.strategy == "builds" and any(s.kind == "shadow" for s in self.steps):
            raise ValueError('a shadow step compares model versions: it needs strategy = "pools"')
        return self

    @field_validator("steps")
    @classmethod
    def _order(cls, steps: list[Any]) -> list[Any]:
        kinds = [s.kind for s in steps]
        if "promote" in kinds:
            after = kinds[kinds.index("promote") + 1 :]
            if any(k != "drain" for k in after):
                raise ValueError("only a drain step may follow the promote step")
            if kinds.count("promote") > 1:
                raise ValueError("a plan promotes once")
        if "drain" in kinds and "promote" not in kinds[: kinds.index("drain")]:
            raise ValueError("a drain step must come after the promote step")
        if "shadow" in kinds and any(k == "canary" for k in kinds[: kinds.index("shadow")]):
            raise ValueError("a shadow step must come before the canary steps")
        fractions = [s.fraction for s in steps if s.kind == "canary"]
        if fractions != sorted(fractions):
            raise ValueError(f"canary fractions must not decrease, got {fractions}")
        return steps


_PLAN = TypeAdapter(RolloutPlanFile)


def _where(loc: tuple[Any, ...], doc: dict[str, Any]) -> str:
    """``steps[2] (canary): fraction`` from a pydantic error location."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        item = loc[i]
        if item == "steps" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            index = loc[i + 1]
            kind = ""
            steps = doc.get("steps")
            if isinstance(steps, list) and index < len(steps) and isinstance(steps[index], dict):
                kind = f" ({steps[index].get('kind', '?')})"
            parts.append(f"steps[{index + 1}]{kind}")
            i += 2
            # The discriminator's tag (e.g. "canary") is not a field: skip it.
            if (
                i < len(loc)
                and isinstance(loc[i], str)
                and loc[i] in ("shadow", "canary", "promote", "drain")
            ):
                i += 1
            continue
        parts.append(str(item))
        i += 1
    return ".".join(parts) or "<plan>"


def parse_plan(doc: dict[str, Any], source: str = "<plan>") -> RolloutPlanFile:
    """Validate a decoded plan; the error names the source, the step and the field."""
    try:
        return _PLAN.validate_python(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {_where(tuple(first['loc']), doc)}: {first['msg']}") from None


def load_plan(path: Path) -> RolloutPlanFile:
    """Read and validate a plan file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rollout plan: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_plan(doc, str(path))


def max_wait_of(step: object) -> float | None:
    """Seconds a step may stay inconclusive before the controller pauses for a person. A drain
    that waits past its deadline pauses then, so that it never waits unseen for ever."""
    if isinstance(step, DrainStep):
        return step.deadline if step.on_deadline == "wait" else None
    max_wait: float | None = getattr(step, "max_wait", None)
    return max_wait


def describe_step(step: object) -> str:
    """One line naming a step and its settings, as the CLI, the dashboard and the audit show it."""
    if isinstance(step, ShadowStep):
        return f"shadow {step.sample:.0%} for {step.documents} comparisons"
    if isinstance(step, CanaryStep):
        return f"canary {step.fraction:.0%} (bake {step.bake:g} s, {step.min_documents} documents)"
    if isinstance(step, DrainStep):
        return f"drain (deadline {step.deadline:g} s, then {step.on_deadline})"
    return "promote"
