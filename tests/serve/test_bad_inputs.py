"""Bad requests: each gets its 4xx status, a stable error code and a message that says what to fix.

The client fixture serves with ``max_body_bytes=100_000`` and ``max_history_items=50``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"content-type": "application/json"}

# (name, method, path, body: dict | str | bytes | None, headers, status, code, message fragment)
# fmt: off
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str, str]] = [
    ("malformed json", "POST", "/v1/recommend", '{"user_id": ', JSON, 400, "malformed_json", "not valid JSON"),
    ("trailing garbage", "POST", "/v1/retrieve", '{"user_id": "u1"} x', JSON, 400, "malformed_json", "not valid JSON"),
    ("body is a list", "POST", "/v1/recommend", "[]", JSON, 422, "invalid_request", "must be a JSON object"),
    ("empty body", "POST", "/v1/recommend", "", JSON, 422, "invalid_request", "request body is empty"),
    ("no content type", "POST", "/v1/recommend", '{"user_id": "u1"}', {}, 415, "unsupported_media_type", "application/json"),
    ("text/plain", "POST", "/v1/retrieve", '{"user_id": "u1"}', {"content-type": "text/plain"}, 415, "unsupported_media_type", "text/plain"),
    ("neither user nor history", "POST", "/v1/recommend", {}, JSON, 422, "invalid_request", "exactly one of 'user_id' and 'history'"),
    ("both user and history", "POST", "/v1/retrieve", {"user_id": "u1", "history": ["v1"]}, JSON, 422, "invalid_request", "exactly one"),
    ("unknown field", "POST", "/v1/recommend", {"user_id": "u1", "beam": 5}, JSON, 422, "invalid_request", "beam: Extra inputs are not permitted"),
    ("empty history", "POST", "/v1/recommend", {"history": []}, JSON, 422, "empty_history", "history is empty"),
    ("empty history (retrieve)", "POST", "/v1/retrieve", {"history": [], "condition": 1}, JSON, 422, "empty_history", "history is empty"),
    ("unknown items", "POST", "/v1/recommend", {"history": ["v1", "nope", "v2", "gone", "nope"]}, JSON, 422, "unknown_items", "2 unknown item id(s): 'nope', 'gone'"),
    ("unknown items (retrieve)", "POST", "/v1/retrieve", {"history": ["x9"], "condition": 5}, JSON, 422, "unknown_items", "'x9'"),
    ("history over server limit", "POST", "/v1/recommend", {"history": ["v1"] * 51}, JSON, 422, "history_too_long", "at most 50"),
    ("history over schema limit", "POST", "/v1/recommend", {"history": ["v1"] * 1001}, JSON, 422, "invalid_request", "at most 1000"),
    ("history id not a string", "POST", "/v1/recommend", {"history": [{"id": 1}]}, JSON, 422, "invalid_request", "history.0"),
    ("history id too long", "POST", "/v1/recommend", {"history": ["v" * 300]}, JSON, 422, "invalid_request", "at most 256 characters"),
    ("user id is a float", "POST", "/v1/recommend", {"user_id": 1.5}, JSON, 422, "invalid_request", "user_id"),
    ("user id is a bool", "POST", "/v1/recommend", {"user_id": True}, JSON, 422, "invalid_request", "user_id"),
    ("unknown user", "POST", "/v1/recommend", {"user_id": "nobody"}, JSON, 404, "unknown_user", "unknown user 'nobody'"),
    ("unknown user (retrieve)", "POST", "/v1/retrieve", {"user_id": 77, "strategy": "max"}, JSON, 404, "unknown_user", "unknown user '77'"),
    ("m zero", "POST", "/v1/recommend", {"user_id": "u1", "m": 0}, JSON, 422, "invalid_request", "m: Input should be greater than or equal to 1"),
    ("m over schema limit", "POST", "/v1/recommend", {"user_id": "u1", "m": 51}, JSON, 422, "invalid_request", "less than or equal to 50"),
    ("m over the model's sessions", "POST", "/v1/recommend", {"user_id": "u1", "m": 6}, JSON, 422, "m_too_large", "max_session_items (5)"),
    ("m over what exclusion leaves", "POST", "/v1/recommend", {"history": [f"v{i}" for i in range(48)], "m": 3}, JSON, 422, "not_enough_items", "only 2 catalogue items remain"),
    ("beam width zero", "POST", "/v1/recommend", {"user_id": "u1", "beam_width": 0}, JSON, 422, "invalid_request", "beam_width"),
    ("beam width over limit", "POST", "/v1/recommend", {"user_id": "u1", "beam_width": 257}, JSON, 422, "invalid_request", "less than or equal to 256"),
    ("beam width a string", "POST", "/v1/recommend", {"user_id": "u1", "beam_width": "wide"}, JSON, 422, "invalid_request", "beam_width"),
    ("k zero", "POST", "/v1/retrieve", {"user_id": "u1", "k": 0}, JSON, 422, "invalid_request", "k: Input should be greater than or equal to 1"),
    ("k over limit", "POST", "/v1/retrieve", {"user_id": "u1", "k": 1001}, JSON, 422, "invalid_request", "less than or equal to 1000"),
    ("unknown strategy", "POST", "/v1/retrieve", {"user_id": "u1", "strategy": "best"}, JSON, 422, "invalid_request", "strategy"),
    ("fixed without condition", "POST", "/v1/retrieve", {"user_id": "u1", "strategy": "fixed"}, JSON, 422, "condition_required", "needs a condition value"),
    ("history without condition", "POST", "/v1/retrieve", {"history": ["v1"]}, JSON, 422, "strategy_needs_user", "strategy 'mean'"),
    ("history with per-user strategy", "POST", "/v1/retrieve", {"history": ["v1"], "strategy": "tdm"}, JSON, 422, "strategy_needs_user", "explicit history"),
    ("condition NaN", "POST", "/v1/retrieve", '{"user_id": "u1", "condition": NaN}', JSON, 422, "invalid_request", "finite number"),
    ("condition Infinity", "POST", "/v1/retrieve", '{"user_id": "u1", "condition": Infinity}', JSON, 422, "invalid_request", "finite number"),
    ("condition a string", "POST", "/v1/retrieve", {"user_id": "u1", "condition": "high"}, JSON, 422, "invalid_request", "condition"),
    ("tdm values empty", "POST", "/v1/retrieve", {"user_id": "u1", "strategy": "tdm", "tdm_values": []}, JSON, 422, "invalid_request", "tdm_values"),
    ("unknown item", "GET", "/v1/items/nope", None, {}, 404, "unknown_item", "unknown item id 'nope'"),
    ("unknown item id with a slash", "GET", "/v1/items/a/b", None, {}, 404, "unknown_item", "unknown item id 'a/b'"),
    ("unknown route", "GET", "/v2/things", None, {}, 404, "not_found", "no such endpoint"),
    ("wrong method", "GET", "/v1/retrieve", None, {}, 405, "method_not_allowed", "GET is not allowed"),
    ("non-utf8 body", "POST", "/v1/recommend", b"\xff\xfe{", JSON, 400, "malformed_json", "not UTF-8"),
    ("nested too deeply", "POST", "/v1/recommend", b"[" * 50_000 + b"]" * 50_000, JSON, 400, "malformed_json", "could not be parsed"),
    ("m is a bool", "POST", "/v1/recommend", {"user_id": "u1", "m": True}, JSON, 422, "invalid_request", "m: Input should be a valid integer"),
    ("k is a float", "POST", "/v1/retrieve", {"user_id": "u1", "k": 5.0}, JSON, 422, "invalid_request", "k: Input should be a valid integer"),
    ("k is a string", "POST", "/v1/retrieve", {"user_id": "u1", "k": "5"}, JSON, 422, "invalid_request", "k: Input should be a valid integer"),
    ("exclude flag a string", "POST", "/v1/recommend", {"user_id": "u1", "exclude_history": "yes"}, JSON, 422, "invalid_request", "exclude_history"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_gets_clear_4xx(
    client: TestClient,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
    fragment: str,
) -> None:
    content = json.dumps(body) if isinstance(body, dict) else body
    r = client.request(method, path, content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) <= {"code", "message", "details"}
    if code:
        assert error["code"] == code
    assert fragment in error["message"]
    assert error["message"]  # never empty


def test_unknown_items_are_listed_in_details(client: TestClient) -> None:
    r = client.post("/v1/recommend", json={"history": ["v1", "a", "b", "a"]})
    assert r.json()["error"]["details"] == {"unknown_item_ids": ["a", "b"]}


def test_long_unknown_lists_are_capped_in_the_message(client: TestClient) -> None:
    r = client.post("/v1/recommend", json={"history": [f"bad{i}" for i in range(45)]})
    error = r.json()["error"]
    assert "45 unknown item id(s)" in error["message"] and "(and 25 more)" in error["message"]
    assert len(error["details"]["unknown_item_ids"]) == 45


def test_oversized_body_is_413_by_declared_length(client: TestClient) -> None:
    body = json.dumps({"history": ["v1"] * 30_000})  # ~180 kB > 100 kB limit
    r = client.post("/v1/recommend", content=body, headers=JSON)
    assert r.status_code == 413
    assert r.json()["error"] == {
        "code": "payload_too_large",
        "message": f"request body too large ({len(body)} bytes); the limit is 100000 bytes",
    }


def test_oversized_streamed_body_is_413(client: TestClient) -> None:
    chunks = [b'{"history": ['] + [b'"v1",' * 1000] * 30 + [b'"v1"]}']
    r = client.post("/v1/recommend", content=iter(chunks), headers=JSON)  # chunked: no length
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_validation_errors_list_every_field(client: TestClient) -> None:
    r = client.post("/v1/recommend", json={"user_id": "u1", "m": 0, "beam_width": 999})
    error = r.json()["error"]
    assert {d["field"] for d in error["details"]} == {"m", "beam_width"}
    assert "m:" in error["message"] and "beam_width:" in error["message"]


def test_service_still_answers_after_bad_requests(client: TestClient) -> None:
    for case in CASES[:5]:
        client.request(
            case[1], case[2], content=case[3] if isinstance(case[3], str) else None, headers=case[4]
        )
    assert client.post("/v1/recommend", json={"user_id": "u1", "m": 2}).status_code == 200
