"""The plugin's configuration refuses bad input with one line naming what was wrong."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from modelbaton import AssignedWorkflow, AssignmentPlugin, BusinessKeyError, ConfigError, steady
from modelbaton.pipeline.start_assignment import from_header

DEFAULT = steady("m", "v1", 1)


def spec(extract: Any, workflow: type | str = "Probe") -> AssignedWorkflow:
    return AssignedWorkflow(workflow, business_key=extract, default=DEFAULT)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_an_extractor_that_raises_is_named_with_the_workflow_and_its_id() -> None:
    def boom(inp: Any, _id: str) -> str:
        raise ValueError("no customer\nsecond line")

    with pytest.raises(BusinessKeyError) as caught:
        spec(boom).key_of([{"x": 1}], "wf-1")
    assert one_line(caught) == (
        "business key of Probe (workflow id 'wf-1'): the extractor raised ValueError: no customer"
    )


@pytest.mark.parametrize("returned", ["", None, 42])
def test_an_extractor_must_return_a_non_empty_string(returned: object) -> None:
    with pytest.raises(BusinessKeyError) as caught:
        spec(lambda inp, _id: returned).key_of([], "wf-2")
    assert one_line(caught) == (
        f"business key of Probe (workflow id 'wf-2'): the extractor returned {returned!r}, "
        "expected a non-empty string"
    )


def test_the_extractor_sees_the_first_argument_and_the_id() -> None:
    assert spec(lambda inp, wid: f"{inp['c']}@{wid}").key_of([{"c": "acme"}, 2], "w") == "acme@w"
    assert spec(lambda inp, wid: f"{inp}@{wid}").key_of([], "w") == "None@w"


def test_a_class_that_is_not_a_workflow_is_refused() -> None:
    class NotAWorkflow:
        pass

    with pytest.raises(ConfigError) as caught:
        AssignmentPlugin([spec(lambda inp, _id: "k", NotAWorkflow)])
    assert one_line(caught).endswith("NotAWorkflow is not a @workflow.defn")


def test_a_workflow_type_named_twice_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        AssignmentPlugin([spec(lambda inp, _id: "a"), spec(lambda inp, _id: "b")])
    assert one_line(caught) == "AssignmentPlugin: workflow type 'Probe' is named twice"


def test_a_corrupt_header_is_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        from_header(Payload(data=b'{"model": {"model_id": "m"}}'))
    assert one_line(caught).startswith("header 'modelbaton-assignment': model.model_version:")
