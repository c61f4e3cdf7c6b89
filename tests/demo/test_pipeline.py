"""The demo end to end on tiny data: every stage runs, artifacts land atomically, the report
is self-contained, the bundle serves, and failures are contained and named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from onerec.demo import STAGE_NAMES, DemoConfig, DemoResult, run_demo
from onerec.demo import pipeline as demo_pipeline
from onerec.demo.context import StageUnavailable
from onerec.demo.pipeline import STAGES, StageSpec
from onerec.errors import OnerecError


def test_every_stage_runs_and_writes_its_directory(tiny_run: DemoResult) -> None:
    statuses = {r.name: (r.status, r.reason) for r in tiny_run.records}
    assert statuses == {name: ("ok", "") for name in STAGE_NAMES}
    for name in STAGE_NAMES:
        assert (tiny_run.run_dir / name).is_dir(), name
    assert not [p.name for p in tiny_run.run_dir.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    stages = json.loads((tiny_run.run_dir / "stages.json").read_text())
    assert [s["name"] for s in stages] == list(STAGE_NAMES)
    assert all(s["status"] == "ok" and s["seconds"] >= 0 and s["cpu_seconds"] >= 0 for s in stages)
    assert sum(s["seconds"] for s in stages) > 0


def test_stage_outputs_hold_the_figures_the_report_plots(tiny_run: DemoResult) -> None:
    summary = tiny_run.summary
    gen = summary["generator"]
    assert gen["train_curves"]["loss"] and gen["eval_curves"]["ndcg@10"]
    assert len(gen["expert_load"]) == 1 and abs(sum(gen["expert_load"][0]) - 1) < 1e-5
    tok = summary["tokenizer"]
    assert [sum(level) for level in tok["cluster_sizes"]] == [64, 64]  # every item, each level
    assert tok["plain"]["cluster_sizes"]
    ipa = summary["ipa"]
    assert len(ipa["evaluations"]) == 2 and "reward" in ipa["evaluations"][0]
    assert summary["crm"]["fixed_test"], "the control curve needs the fixed-condition rows"
    ranking = summary["evaluate"]["ranking"]
    assert [m["model"] for m in ranking] == [
        "random",
        "most popular",
        "OneRec generator (NTP)",
        "OneRec generator + IPA",
    ]
    assert all(0.0 <= m["recall@10"] <= 1.0 for m in ranking)


def test_report_is_self_contained_html_with_inline_svg(tiny_run: DemoResult) -> None:
    html = tiny_run.report_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count("<svg") >= 8
    for section in (
        "codebook balance",
        "training curves and expert load",
        "reward before / after",
        "control curve",
        "Leave-one-out ranking",
    ):
        assert section in html, section
    # No external resource of any kind: only the SVG namespace may look like a URL.
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+", html))
    assert urls <= {"http://www.w3.org"}, urls
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert "not run" not in html and "failed:" not in html


def test_bundle_serves_a_session(tiny_run: DemoResult) -> None:
    from fastapi.testclient import TestClient

    from onerec.serve import create_app

    client = TestClient(create_app(tiny_run.run_dir / "bundle"))
    assert client.get("/healthz").status_code == 200
    reply = client.post("/v1/recommend", json={"user_id": "u1", "beam_width": 8})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["items"]) == 3  # the tiny generator's session size


def test_a_failing_stage_is_named_and_contained(
    tiny_config: DemoConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx, data):  # type: ignore[no-untyped-def]
        with ctx.stage_dir("reward") as tmp:
            (tmp / "half-written.bin").write_bytes(b"x")
            raise RuntimeError("reward exploded")

    stages = tuple(
        StageSpec(s.name, s.title, broken, s.needs, s.wants) if s.name == "reward" else s
        for s in STAGES
    )
    monkeypatch.setattr(demo_pipeline, "STAGES", stages)
    config = tiny_config.model_copy(update={"budgets": {"generator": 1e-6}})
    result = run_demo(
        config, tmp_path / "run", Console(quiet=True), show_progress=False, stop_after="ipa"
    )
    status = {r.name: r for r in result.records}
    assert status["reward"].status == "failed"
    assert status["reward"].reason == "RuntimeError: reward exploded"
    assert status["ipa"].status == "not run" and "reward (failed)" in status["ipa"].reason
    assert status["generator"].status == "ok" and status["generator"].over_budget
    assert status["crm"].status == "not run" and "stopped after" in status["crm"].reason
    assert not (tmp_path / "run" / "reward").exists(), "a failed stage leaves no directory"
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp-")]
    assert "reward exploded" in (tmp_path / "run" / "logs" / "reward.traceback.txt").read_text()
    html = result.report_path.read_text()
    assert "failed: RuntimeError: reward exploded" in html and "over budget" in html


def test_an_unavailable_part_is_reported_as_not_run(
    tiny_config: DemoConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(ctx, data):  # type: ignore[no-untyped-def]
        raise StageUnavailable("onerec.reward is not available yet")

    stages = tuple(
        StageSpec(s.name, s.title, missing, s.needs) if s.name == "reward" else s for s in STAGES
    )
    monkeypatch.setattr(demo_pipeline, "STAGES", stages)
    result = run_demo(
        tiny_config, tmp_path / "run", Console(quiet=True), show_progress=False, stop_after="reward"
    )
    reward = next(r for r in result.records if r.name == "reward")
    assert (reward.status, reward.reason) == ("not run", "onerec.reward is not available yet")
    assert "not run: onerec.reward is not available yet" in result.report_path.read_text()
    assert not result.failed


def test_refuses_to_clear_a_directory_that_is_not_a_demo_run(
    tiny_config: DemoConfig, tmp_path: Path
) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(OnerecError, match="not empty and holds no earlier demo run"):
        run_demo(tiny_config, tmp_path, Console(quiet=True), show_progress=False)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_rerun_replaces_the_previous_run_and_removes_stale_temporaries(
    tiny_config: DemoConfig, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run_demo(tiny_config, run, Console(quiet=True), show_progress=False, stop_after="prepare")
    (run / ".tmp-generator-killed").mkdir()  # what a kill -9 mid-stage leaves
    (run / "embeddings").mkdir()  # an artifact of the earlier run, not of this one
    run_demo(tiny_config, run, Console(quiet=True), show_progress=False, stop_after="prepare")
    assert sorted(p.name for p in run.iterdir()) == [
        "demo_config.json",
        "prepare",
        "report.html",
        "stages.json",
        "summary.json",
    ]
