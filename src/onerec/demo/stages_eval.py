"""Demo stages 7–9: train CRM, evaluate everything, assemble the serving bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onerec.baselines.popular import MostPopular
from onerec.demo.context import StageContext, StageUnavailable
from onerec.demo.stages_data import ALL_DIR, FittedTokenizer, PreparedData
from onerec.demo.stages_models import (
    AlignedGenerator,
    TrainedGenerator,
    TrainedReward,
    curves,
    read_metrics_log,
)
from onerec.eval import rank_all, ranking_metrics
from onerec.generation.recommend import recommend_topk
from onerec.io import atomic_write_json


@dataclass
class TrainedCRM:
    """The CRM run's summary (control tables per split) and its model directory."""

    model_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


def fixed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``fixed``-strategy rows with their training quantile parsed from ``q0.25=…``."""
    out = []
    for row in rows:
        if row.get("strategy") != "fixed":
            continue
        label = str(row.get("condition", ""))
        quantile, _, value = label.partition("=")
        try:
            out.append({**row, "quantile": float(quantile.lstrip("q")), "value": float(value)})
        except ValueError:
            continue
    return out


def run_crm(ctx: StageContext, data: PreparedData) -> TrainedCRM:
    """CRM (condition from ``crm.config.data.condition_target``); the control table holds the
    held-out recall, logged target of the hits and target AUC at each condition."""
    from onerec.retrieval.train import train_retrieval

    base = ctx.config.crm.config
    data_cfg = base.data.model_copy(update={"dataset": str(ctx.path("prepare") / ALL_DIR)})
    train_cfg = base.train.model_copy(update={"progress": ctx.show_progress})
    with ctx.stage_dir("crm") as tmp:
        cfg = base.model_copy(update={"data": data_cfg, "train": train_cfg, "out_dir": str(tmp)})
        run = train_retrieval(cfg, dataset=data.dataset, save=True)
        records = read_metrics_log(tmp / "training" / "metrics.jsonl")
    ks = list(base.eval.ks)
    summary = {
        **{k: v for k, v in run.summary.items() if k != "control"},
        "control": run.summary.get("control", {}),
        "fixed_test": fixed_rows(run.summary.get("control", {}).get("test", [])),
        "ks": ks,
        "train_curves": curves(records, ["loss"], "train"),
        "eval_curves": curves(records, [f"recall@{k}" for k in ks], "eval"),
    }
    return TrainedCRM(ctx.path("crm") / "model", summary)


@dataclass
class Evaluation:
    """The final metric tables."""

    summary: dict[str, Any] = field(default_factory=dict)


def random_topk(num_users: int, num_items: int, k: int, seed: int) -> np.ndarray:
    """``[U, k]`` distinct uniformly random items per user (the chance baseline)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(num_items, size=k, replace=False) for _ in range(num_users)])


def run_evaluate(
    ctx: StageContext,
    data: PreparedData,
    tok: FittedTokenizer | None,
    gen: TrainedGenerator | None,
    reward: TrainedReward | None,
    aligned: AlignedGenerator | None,
    crm: TrainedCRM | None,
) -> Evaluation:
    """Leave-one-out on engaged test items for random / most popular / generator / generator +
    IPA, plus the reward, IPA and CRM tables the other stages measured."""
    ks = sorted(ctx.config.eval.ks)
    k = max(ks)
    test = data.split.test
    targets = np.asarray(test.targets)
    num_items = data.dataset.num_items
    lists: dict[str, np.ndarray] = {"random": random_topk(len(test), num_items, k, ctx.config.seed)}
    if ctx.config.eval.popular_baseline:
        popular = MostPopular.fit(data.split.train_sequences, num_items)
        lists["most popular"] = rank_all(popular.score_histories, test, k)
    if tok is not None and gen is not None:
        beam = gen.run_config.eval.beam_width
        models = [("OneRec generator (NTP)", gen.model)]
        if aligned is not None:
            models.append(("OneRec generator + IPA", aligned.model))
        for name, model in models:
            lists[name], _ = recommend_topk(
                model,
                test.histories,
                tok.tokenizer.codes,
                tok.tokenizer.trie,
                top_k=k,
                beam_width=beam,
            )
    # A list, not a mapping: the report keeps this order (JSON files are written key-sorted).
    ranking = [
        {"model": name, **ranking_metrics(topk, targets, ks)} for name, topk in lists.items()
    ]
    summary: dict[str, Any] = {
        "ranking": ranking,
        "ranking_protocol": (
            f"leave-one-out on engaged interactions: {len(test)} test users, full ranking over "
            f"{num_items} items, history ≤ {ctx.config.data.max_history}, beam search "
            f"(width {ctx.config.generator.eval.beam_width}) for the generator; random = {k} "
            f"distinct uniformly drawn items (expected recall@{k} = {k / num_items:.5f})"
        ),
    }
    if reward is not None:
        summary["reward"] = reward.summary["results"]
    if aligned is not None:
        evaluations = aligned.summary["evaluations"]
        summary["ipa"] = {"before": evaluations[0], "after": evaluations[-1]}
    if crm is not None:
        summary["crm"] = crm.summary["control"].get("test", [])
    with ctx.stage_dir("evaluate") as tmp:
        atomic_write_json(tmp / "metrics.json", summary)
    return Evaluation(summary)


@dataclass
class Bundle:
    """The serving bundle directory (``onerec serve RUN_DIR/bundle``)."""

    path: Path
    summary: dict[str, Any] = field(default_factory=dict)


def run_bundle(
    ctx: StageContext,
    data: PreparedData,
    gen: TrainedGenerator | None,
    aligned: AlignedGenerator | None,
    crm: TrainedCRM | None,
) -> Bundle:
    """``onerec.serve.build_bundle`` over the aligned (else NTP) generator and the CRM."""
    try:
        from onerec.serve.bundle import build_bundle
    except ImportError as exc:
        raise StageUnavailable(f"onerec.serve.build_bundle is not available ({exc})") from None
    generator_dir = aligned.model_dir if aligned is not None else gen.model_dir if gen else None
    retrieval_dir = crm.model_dir if crm is not None else None
    if generator_dir is None and retrieval_dir is None:
        raise StageUnavailable("neither a generator nor a CRM model was trained")
    path = build_bundle(
        ctx.path("bundle"),
        data.dataset,
        generator_dir=generator_dir,
        retrieval_dir=retrieval_dir,
        user_histories=data.engaged.sequences(),
        name="onerec-demo",
    )
    summary = {
        "path": str(path),
        "generator": str(generator_dir) if generator_dir else None,
        "retrieval": str(retrieval_dir) if retrieval_dir else None,
        "command": f"onerec serve {path}",
    }
    return Bundle(path, summary)
