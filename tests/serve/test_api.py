"""The endpoints' happy paths, in process (fastapi.testclient) over a bundle of real tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from onerec.serve import create_app, load_bundle
from onerec.serve.app import ENV_CONFIG_JSON, ENV_MODEL_DIR, app_from_env

from .tiny_world import NUM_ITEMS, NUM_USERS, make_bundle


def test_healthz_reports_models_and_versions(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["num_items"] == NUM_ITEMS and body["num_users"] == NUM_USERS
    assert body["generator"]["codebook_sizes"] == [4, 4, 4]
    assert body["generator"]["parameters"] > 0
    assert body["retrieval"]["condition"] == "nn"
    assert set(body["versions"]) >= {"onerec", "torch", "python"}
    assert body["limits"]["max_history_items"] == 50


def test_openapi_docs_list_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/recommend", "/v1/retrieve", "/v1/items/{item_id}", "/healthz"} <= set(paths)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RecommendRequest"]
    assert schema["properties"]["beam_width"]["maximum"] == 256
    assert client.get("/docs").status_code == 200


def test_recommend_for_user_is_a_session_of_distinct_unseen_items(
    client: TestClient, bundle_dir: Path
) -> None:
    history = set(load_bundle(bundle_dir).users.history(7).tolist())
    r = client.post("/v1/recommend", json={"user_id": "u7", "m": 5, "beam_width": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    idx = [item["item_idx"] for item in body["items"]]
    assert len(idx) == 5 and len(set(idx)) == 5
    assert not set(idx) & history
    assert [item["item_id"] for item in body["items"]] == [f"v{i}" for i in idx]
    assert sum(item["score"] for item in body["items"]) == pytest.approx(
        body["session_score"], abs=1e-4
    )
    assert body["history_length"] == 8  # the generator reads its last max_history items
    assert body["user_id"] == "u7" and body["latency_ms"] > 0


def test_recommend_from_history_can_include_history(client: TestClient) -> None:
    # Default m is the generator's max_session_items (5).
    r = client.post("/v1/recommend", json={"history": ["v1", "v2", "v3"], "exclude_history": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["m"] == 5 and body["history_length"] == 3 and body["user_id"] is None
    # Numbers are accepted as ids (read as their decimal strings): none exist here.
    r = client.post("/v1/recommend", json={"history": [12]})
    assert r.status_code == 422 and r.json()["error"]["details"]["unknown_item_ids"] == ["12"]


def test_same_request_same_answer(client: TestClient) -> None:
    request = {"history": ["v4", "v9"], "m": 3, "beam_width": 7}
    first = client.post("/v1/recommend", json=request).json()
    second = client.post("/v1/recommend", json=request).json()
    assert first["items"] == second["items"]


def test_retrieve_for_user_with_strategies(client: TestClient) -> None:
    r = client.post("/v1/retrieve", json={"user_id": "u3", "k": 10, "strategy": "max"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 10 and body["strategy"] == "max"
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    low = client.post("/v1/retrieve", json={"user_id": "u3", "k": 10, "condition": 1000}).json()
    assert low["strategy"] == "fixed" and low["condition_position"] == 0.0
    assert low["condition_position"] < body["condition_position"]
    default = client.post("/v1/retrieve", json={"user_id": "u3"}).json()  # k=50: whole catalogue
    seen = client.app.state.bundle.retrieval.retriever.seen(3)  # type: ignore[attr-defined]
    assert default["strategy"] == "mean" and len(default["items"]) == NUM_ITEMS - len(seen)
    assert not {item["item_idx"] for item in default["items"]} & set(seen.tolist())


def test_retrieve_tdm_cycles_conditions(client: TestClient) -> None:
    positions = [
        client.post(
            "/v1/retrieve",
            json={"user_id": "u5", "k": 3, "strategy": "tdm", "tdm_values": [1000, 59000]},
        ).json()["condition_position"]
        for _ in range(4)
    ]
    assert positions[0] == positions[2] and positions[1] == positions[3]
    assert positions[0] < positions[1]


def test_retrieve_mix_marginalises_the_condition(client: TestClient) -> None:
    body = client.post("/v1/retrieve", json={"user_id": "u5", "k": 5, "strategy": "mix"}).json()
    assert body["strategy"] == "mix" and body["condition_position"] is None
    scores = [item["score"] for item in body["items"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert all(score <= 0 for score in scores)  # log-probabilities of the marginal
    history = client.post("/v1/retrieve", json={"history": ["v1", "v2"], "strategy": "mix", "k": 3})
    assert history.status_code == 422
    assert history.json()["error"]["code"] == "strategy_needs_user"


def test_retrieve_for_history_excludes_it(client: TestClient) -> None:
    history = [f"v{i}" for i in range(0, 40, 2)]
    r = client.post("/v1/retrieve", json={"history": history, "k": 30, "condition": 20000})
    assert r.status_code == 200, r.text
    got = {item["item_id"] for item in r.json()["items"]}
    assert len(got) == 30 and not got & set(history)
    kept = client.post(
        "/v1/retrieve",
        json={"history": history, "k": 50, "condition": 20000, "exclude_seen": False},
    ).json()
    assert len(kept["items"]) == NUM_ITEMS


def test_get_item(client: TestClient) -> None:
    r = client.get("/v1/items/v7")
    assert r.status_code == 200
    body = r.json()
    assert body["item_idx"] == 7 and len(body["semantic_id"]) == 3
    features = body["features"]
    assert features["quality"] is None  # NaN becomes null, never invalid JSON
    assert features["upload_date"] == "2022-04-08"
    assert features["tags"] == ["t1", "t2"] and features["text"] == "video number 7"


def test_bundle_with_one_part_answers_501_for_the_other(tmp_path: Path, tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    crm_only = TestClient(
        create_app(make_bundle(tmp_path / "crm", tiny_dataset, with_generator=False))
    )
    r = crm_only.post("/v1/recommend", json={"user_id": "u1"})
    assert r.status_code == 501 and r.json()["error"]["code"] == "model_not_in_bundle"
    assert (
        crm_only.post("/v1/retrieve", json={"user_id": "u1", "strategy": "mean"}).status_code == 200
    )
    assert crm_only.get("/v1/items/v1").json()["semantic_id"] is None
    assert crm_only.get("/healthz").json()["generator"] is None


def test_app_factory_reads_environment(monkeypatch: pytest.MonkeyPatch, bundle_dir: Path) -> None:
    monkeypatch.setenv(ENV_MODEL_DIR, str(bundle_dir))
    monkeypatch.setenv(ENV_CONFIG_JSON, '{"max_history_items": 3, "torch_threads": 0}')
    app = TestClient(app_from_env())
    assert app.get("/healthz").json()["limits"]["max_history_items"] == 3
    r = app.post("/v1/recommend", json={"history": ["v1"] * 4})
    assert r.status_code == 422 and r.json()["error"]["code"] == "history_too_long"


def test_a_bug_is_a_json_500_not_a_crash(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = load_bundle(bundle_dir)
    app = create_app(bundle)
    assert bundle.generator is not None

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(bundle.generator, "recommend", broken)
    client = TestClient(app, raise_server_exceptions=False)
    r = client.post("/v1/recommend", json={"user_id": "u1"})
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error (RuntimeError); see the server log",
        }
    }
    assert (
        client.post("/v1/retrieve", json={"user_id": "u1", "strategy": "mean"}).status_code == 200
    )
