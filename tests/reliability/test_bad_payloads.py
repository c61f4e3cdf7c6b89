"""The bad-input matrix, API part: malformed or impossible payloads get a clear 4xx JSON error
(``{"error": {"code", "message"}}``), never a 500 or a traceback, and the service keeps serving.

Runs against the real app (``onerec.serve.create_app``) over a bundle of small random-weight
models built with the serve part's public ``build_smoke_bundle``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from onerec.data.prepared import PreparedDataset

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@dataclass
class Payload:
    """One bad request and the answer it must get."""

    id: str
    method: str
    path: str
    body: Any
    status: int
    fragment: str
    headers: dict[str, str] | None = None


def tiny_dataset() -> PreparedDataset:
    rng = np.random.default_rng(0)
    users, items, per_user = 12, 30, 8
    interactions = pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(users), per_user).astype(np.int32),
            "item_idx": rng.integers(0, items, users * per_user).astype(np.int32),
            "timestamp": (np.tile(np.arange(per_user), users) * 1000 + 1_650_000_000_000).astype(
                np.int64
            ),
            "play_time_ms": rng.integers(1_000, 60_000, users * per_user).astype(np.int64),
            "duration_ms": rng.integers(5_000, 60_000, users * per_user).astype(np.int64),
        }
    )
    item_table = pl.DataFrame(
        {"item_idx": np.arange(items, dtype=np.int32), "item_id": [f"v{i}" for i in range(items)]}
    )
    user_table = pl.DataFrame(
        {"user_idx": np.arange(users, dtype=np.int32), "user_id": [f"u{u}" for u in range(users)]}
    )
    return PreparedDataset(interactions, item_table, user_table, {"name": "payloads"}, "payloads")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from onerec.serve import ServeConfig, create_app
    from onerec.serve.smoke import build_smoke_bundle

    bundle = build_smoke_bundle(
        tmp_path_factory.mktemp("payloads") / "bundle",
        tiny_dataset(),
        generator_size="tiny",
        codebook_sizes=[4, 4, 4],
        max_history=8,
        max_session_items=3,
        dropout=0.0,
    )
    config = ServeConfig(device="cpu", max_body_bytes=4096, max_history_items=16, max_beam_width=32)
    return TestClient(create_app(Path(bundle), config))


JSON = {"content-type": "application/json"}
PAYLOAD_CASES = [
    Payload("empty-history", "POST", "/v1/recommend", {"history": []}, 422, "history"),
    Payload(
        "unknown-item-in-history", "POST", "/v1/recommend", {"history": ["v1", "nope"]}, 422, "nope"
    ),
    Payload("unknown-user", "POST", "/v1/recommend", {"user_id": "ghost"}, 404, "ghost"),
    Payload(
        "user-and-history",
        "POST",
        "/v1/recommend",
        {"user_id": "u1", "history": ["v1"]},
        422,
        "exactly one",
    ),
    Payload("neither-user-nor-history", "POST", "/v1/recommend", {}, 422, "exactly one"),
    Payload(
        "beam-width-zero",
        "POST",
        "/v1/recommend",
        {"user_id": "u1", "beam_width": 0},
        422,
        "beam_width",
    ),
    Payload(
        "beam-width-over-limit",
        "POST",
        "/v1/recommend",
        {"user_id": "u1", "beam_width": 200},
        422,
        "beam_width",
    ),
    Payload("m-as-string", "POST", "/v1/recommend", {"user_id": "u1", "m": "5"}, 422, "m"),
    Payload("unknown-field", "POST", "/v1/recommend", {"user_id": "u1", "beam": 5}, 422, "beam"),
    Payload("history-too-long", "POST", "/v1/recommend", {"history": ["v1"] * 40}, 422, "history"),
    Payload("malformed-json", "POST", "/v1/recommend", '{"user_id": "u1",', 400, "not valid json"),
    Payload(
        "not-json-content-type",
        "POST",
        "/v1/recommend",
        "user_id=u1",
        415,
        "json",
        {"content-type": "application/x-www-form-urlencoded"},
    ),
    Payload(
        "oversized-body",
        "POST",
        "/v1/recommend",
        json.dumps({"history": ["v1"] * 2000}),
        413,
        "bytes",
    ),
    Payload("retrieve-k-zero", "POST", "/v1/retrieve", {"user_id": "u1", "k": 0}, 422, "k"),
    Payload(
        "retrieve-fixed-without-condition",
        "POST",
        "/v1/retrieve",
        {"user_id": "u1", "strategy": "fixed"},
        422,
        "condition",
    ),
    Payload(
        "retrieve-nan-condition",
        "POST",
        "/v1/retrieve",
        '{"user_id": "u1", "condition": NaN}',
        422,
        "condition",
    ),
    Payload("unknown-item-lookup", "GET", "/v1/items/nope", None, 404, "nope"),
    Payload("unknown-route", "GET", "/v1/recomend", None, 404, "no such endpoint"),
]


@pytest.mark.parametrize("case", PAYLOAD_CASES, ids=lambda c: c.id)
def test_bad_payload_gets_a_clear_4xx(client: TestClient, case: Payload) -> None:
    content = json.dumps(case.body) if isinstance(case.body, dict) else case.body
    reply = client.request(case.method, case.path, content=content, headers=case.headers or JSON)
    assert reply.status_code == case.status, reply.text
    assert 400 <= reply.status_code < 500
    error = reply.json()["error"]
    assert error["message"] and "\n" not in error["message"].strip()
    assert "Traceback" not in reply.text
    assert (
        case.fragment.lower() in (error["message"] + json.dumps(error.get("details", ""))).lower()
    ), error


def test_service_answers_normally_after_the_bad_payloads(client: TestClient) -> None:
    for case in PAYLOAD_CASES:
        content = json.dumps(case.body) if isinstance(case.body, dict) else case.body
        client.request(case.method, case.path, content=content, headers=case.headers or JSON)
    reply = client.post("/v1/recommend", json={"user_id": "u1", "beam_width": 8})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["items"]) == 3
