"""The service as users run it: ``onerec serve`` in its own process, uvicorn on a loopback port.

One server process serves the whole module (start-up imports torch, so it costs seconds); it is
terminated at the end and must exit cleanly.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

START_TIMEOUT_S = 120.0
JSON = {"content-type": "application/json"}


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_loopback_port()
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    command = [
        sys.executable, "-c", "from onerec.cli import main; main()",
        "serve", str(bundle_dir), "--port", str(port), "--device", "cpu",
        "--max-body-bytes", "100000", "--max-history", "50", "--log-level", "warning",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    running = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{running.log()}")
            try:
                if httpx.get(f"{running.base_url}/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"server did not answer /healthz within {START_TIMEOUT_S} s:\n{running.log()}"
                )
            time.sleep(0.25)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal (exit -15).
    assert process.returncode in (0, -15), running.log()
    assert "Traceback" not in running.log(), running.log()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        yield client


def test_healthz_and_docs_over_http(http: httpx.Client) -> None:
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["limits"]["max_body_bytes"] == 100_000
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/v1/recommend" in http.get("/openapi.json").json()["paths"]


def test_answers_match_the_in_process_app(http: httpx.Client, client: TestClient) -> None:
    for path, request in [
        ("/v1/recommend", {"user_id": "u2", "m": 4, "beam_width": 12}),
        ("/v1/recommend", {"history": ["v3", "v8", "v13"], "m": 2}),
        ("/v1/retrieve", {"user_id": "u2", "k": 7, "strategy": "max"}),
        ("/v1/retrieve", {"history": ["v3"], "k": 5, "condition": 30000}),
    ]:
        over_http = http.post(path, json=request)
        assert over_http.status_code == 200, over_http.text
        in_process = client.post(path, json=request).json()
        assert over_http.json()["items"] == in_process["items"]
    assert http.get("/v1/items/v3").json() == client.get("/v1/items/v3").json()


def test_bad_inputs_over_http(http: httpx.Client) -> None:
    cases = [
        (b'{"user_id": ', JSON, 400, "malformed_json"),
        (b'{"user_id": "u1"}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"user_id": "ghost"}', JSON, 404, "unknown_user"),
        (b'{"history": []}', JSON, 422, "empty_history"),
        (b'{"history": ["v1", "zzz"]}', JSON, 422, "unknown_items"),
        (b'{"user_id": "u1", "beam_width": 1000}', JSON, 422, "invalid_request"),
        (json.dumps({"history": ["v1"] * 30_000}).encode(), JSON, 413, "payload_too_large"),
    ]
    for body, headers, status, code in cases:
        r = http.post("/v1/recommend", content=body, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text


def test_streamed_oversized_body_is_refused_and_server_keeps_serving(http: httpx.Client) -> None:
    chunks = [b'{"history": ['] + [b'"v1",' * 1000] * 30 + [b'"v1"]}']
    r = http.post("/v1/recommend", content=iter(chunks), headers=JSON)
    assert r.status_code == 413
    assert http.post("/v1/recommend", json={"user_id": "u1", "m": 1}).status_code == 200


def test_concurrent_requests_all_succeed(http: httpx.Client) -> None:
    requests = [("/v1/recommend", {"user_id": f"u{i % 10}", "m": 3}) for i in range(10)]
    requests += [
        ("/v1/retrieve", {"user_id": f"u{i % 10}", "k": 5, "strategy": "mean"}) for i in range(10)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda pr: http.post(pr[0], json=pr[1]), requests))
    assert [a.status_code for a in answers] == [200] * len(requests)
    by_request: dict[tuple[str, str], list[dict[str, object]]] = {}
    for (path, body), answer in zip(requests, answers, strict=True):
        key = (path, json.dumps(body, sort_keys=True))
        items = answer.json()["items"]
        assert by_request.setdefault(key, items) == items  # same request, same answer


def non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_binds_loopback_only(server: Server) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to probe")
    port = int(server.base_url.rsplit(":", 1)[1])
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{address}:{port}/healthz", timeout=2.0)
