"""`hookrelay receive`: what it prints and answers, without a server."""

from __future__ import annotations

import json

import pytest

from hookrelay.cli import _parser
from hookrelay.dev.receive import answer, describe


def test_a_request_without_a_webhook_id_is_printed_as_none_not_python_none() -> None:
    line = describe("POST", "/hooks", None, "unverified (no --secret), answered 200", b"{}")
    assert line.startswith("POST /hooks webhook-id=(none) unverified")
    assert "None" not in line


def test_a_webhook_id_is_printed_as_it_came() -> None:
    assert "webhook-id=msg_1 verified" in describe("POST", "/", "msg_1", "verified", b"")


def test_a_success_status_is_answered_ok() -> None:
    response = answer(202)
    assert (response.status, response.text) == (202, "ok")


@pytest.mark.parametrize("status", [204, 205, 304])
def test_a_status_that_carries_no_body_is_answered_without_one(status: int) -> None:
    response = answer(status)
    assert response.status == status
    assert response.body is None


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "internal_server_error"), (429, "too_many_requests"), (599, "status_599")],
)
def test_a_failure_status_is_answered_with_the_json_error_shape(status: int, code: str) -> None:
    response = answer(status)
    assert response.status == status
    assert response.content_type == "application/json"
    assert response.text is not None
    error = json.loads(response.text)["error"]
    assert error["code"] == code
    assert str(status) in error["message"]
    assert error["details"] is None


@pytest.mark.parametrize("status", ["99", "199", "600", "abc", "-1"])
def test_receive_refuses_a_status_that_is_not_an_answer(
    status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["receive", "--status", status])
    assert exited.value.code == 2
    assert "argument --status:" in capsys.readouterr().err


@pytest.mark.parametrize("status", ["200", "404", "599"])
def test_receive_takes_a_status_from_200_to_599(status: str) -> None:
    assert _parser().parse_args(["receive", "--status", status]).status == int(status)
