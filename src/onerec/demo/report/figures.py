"""The report's sections: tables and inline-SVG plots built from each stage's summary."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from onerec.demo.report.svg import Series, bar_chart, line_chart

TableFn = Callable[[Sequence[str], Sequence[Sequence[Any]]], str]
RANKING_KEYS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; NaN/None as "—"."""
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "—"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def run_line(run: dict[str, Any]) -> str:
    """One line of run facts under the title."""
    bits = [
        f"run {run.get('started_at', '?')}",
        f"total {fmt(run.get('total_seconds'))} s wall, {fmt(run.get('total_cpu_seconds'))} s CPU",
        f"config {run.get('config_name', '?')}",
        f"{run.get('cpu_count', '?')} CPUs, torch threads {run.get('torch_threads', '?')}",
        f"load avg {run.get('load_before', '?')} → {run.get('load_after', '?')}",
        f"torch {run.get('torch', '?')} on {run.get('device', '?')}",
    ]
    return " · ".join(bits)


def _grid(*svgs: str) -> str:
    return '<div class="grid">' + "".join(svgs) + "</div>"


def _points(pairs: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    return [(float(p[0]), float(p[1])) for p in pairs]


def results_html(summary: dict[str, Any], table: TableFn) -> str:
    """The metric tables of the evaluate stage."""
    evaluation = summary.get("evaluate")
    if not evaluation:
        return '<div class="box">not run: the evaluate stage has no results</div>'
    parts = []
    ranking = evaluation.get("ranking", [])
    if ranking:
        keys = [k for k in RANKING_KEYS if any(k in m for m in ranking)]
        rows = [[m.get("model"), *(m.get(k) for k in keys)] for m in ranking]
        parts.append("<h3>Leave-one-out ranking (test)</h3>")
        parts.append(f'<p class="note">{escape(evaluation.get("ranking_protocol", ""))}</p>')
        parts.append(table(["model", *keys], rows))
    if "reward" in evaluation:
        parts.append("<h3>Reward model on held-out sessions</h3>")
        parts.append(reward_table(evaluation["reward"], table))
    if "ipa" in evaluation:
        before, after = evaluation["ipa"]["before"], evaluation["ipa"]["after"]
        rows = [
            [k, before.get(k), after.get(k), _change(before.get(k), after.get(k))] for k in before
        ]
        parts.append("<h3>Reward-model estimate of the top generated session, held-out users</h3>")
        parts.append(table(["target", "before IPA", "after IPA", "change"], rows))
    if evaluation.get("crm"):
        parts.append("<h3>CRM control table (test window)</h3>")
        parts.append(crm_table(evaluation["crm"], table))
    return "".join(parts)


def _change(before: Any, after: Any) -> str:
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return "—"
    if not (math.isfinite(before) and math.isfinite(after)) or before == 0:
        return "—"
    return f"{100 * (after - before) / abs(before):+.1f} %"


def reward_table(results: dict[str, Any], table: TableFn) -> str:
    """Per target: each ``model_<measure>`` next to ``baseline_<measure>`` (per-item average)
    and ``smoothed_<measure>`` (per-item average shrunk to the global mean)."""
    rows = []
    for target, result in results.items():
        if not isinstance(result, dict):
            continue
        for key, value in result.items():
            if not key.startswith("model_"):
                continue
            measure = key.removeprefix("model_")
            rows.append(
                [
                    target,
                    measure,
                    value,
                    result.get(f"baseline_{measure}"),
                    result.get(f"smoothed_{measure}"),
                    result.get("impressions"),
                ]
            )
    return table(
        [
            "target",
            "measure",
            "reward model",
            "per-item average",
            "smoothed average",
            "test impressions",
        ],
        rows,
    )


def crm_table(rows: list[dict[str, Any]], table: TableFn) -> str:
    """The control table rows (strategy, condition, recall, logged target of hits, AUC)."""
    if not rows:
        return ""
    metric_keys = [
        k for k in rows[0] if k not in ("strategy", "condition") and not k.startswith("hits@")
    ]
    return table(
        ["strategy", "condition", *metric_keys],
        [[r.get("strategy"), r.get("condition"), *(r.get(k) for k in metric_keys)] for r in rows],
    )


def data_html(data: dict[str, Any], table: TableFn) -> str:
    rows: list[list[Any]] = [
        ["users", data.get("users")],
        ["items", data.get("items")],
        ["impressions", data.get("interactions")],
        ["engaged impressions", data.get("engaged_interactions")],
        ["engagement rule", ", ".join(f"{k}" for k in data.get("engaged_rule", {}))],
        ["users with engagement", data.get("users_with_engagement")],
        ["users evaluated (≥ 3 engaged items)", data.get("evaluated_users")],
        ["feedback columns", ", ".join(data.get("feedback_columns", []))],
    ]
    return table(["", "value"], rows)


def tokenizer_html(tok: dict[str, Any], table: TableFn) -> str:
    sizes = tok.get("cluster_sizes", [])
    per_level = tok.get("per_level", [])
    plain = tok.get("plain", {})
    method = tok.get("method", "balanced")
    series = [
        Series(f"{method} L{i + 1}", [(r + 1, s) for r, s in enumerate(level)])
        for i, level in enumerate(sizes)
    ]
    series += [
        Series(f"plain L{i + 1}", [(r + 1, s) for r, s in enumerate(level)], dashed=True)
        for i, level in enumerate(plain.get("cluster_sizes", []))
    ]
    chart = line_chart(
        series,
        "Items per code, largest first",
        "code rank",
        "items",
        markers=not plain,
        y_from_zero=True,
    )
    groups = [
        (f"{method}: largest / mean", [lv.get("max_over_mean", math.nan) for lv in per_level])
    ]
    if plain:
        groups.append(
            (
                "plain: largest / mean",
                [lv.get("max_over_mean", math.nan) for lv in plain["per_level"]],
            )
        )
    balance = bar_chart(
        [f"L{i + 1}" for i in range(len(per_level))],
        groups,
        "Largest cluster / mean cluster per level",
        "ratio (1 = perfect balance)",
        reference=1.0,
        reference_label="1.0",
    )
    rows = [
        [
            f"L{lv.get('level')}",
            lv.get("used_codes"),
            lv.get("max_over_mean"),
            lv.get("size_entropy"),
            lv.get("distinct_prefixes"),
            lv.get("relative_quantisation_error"),
        ]
        for lv in per_level
    ]
    plain_note = (
        f" Plain residual k-means on the same vectors (dashed; not used): "
        f"{fmt(100 * (plain.get('collision_rate') or 0.0), 3)} % collisions."
        if plain
        else ""
    )
    text = (
        f'<p class="note">{escape(str(tok.get("embeddings", "")))}; {escape(method)} residual k-means, '
        f"codebooks {tok.get('codebook_sizes')} (last = disambiguation); "
        f"{fmt(100 * (tok.get('collision_rate') or 0.0), 3)} % of items share an L-tuple before "
        f"disambiguation.{escape(plain_note)}</p>"
    )
    return (
        text
        + _grid(chart, balance)
        + table(
            [
                "level",
                "codes used",
                "largest / mean",
                "size entropy",
                "distinct prefixes",
                "rel. quantisation error",
            ],
            rows,
        )
    )


def generator_html(gen: dict[str, Any], table: TableFn) -> str:
    train = gen.get("train_curves", {})
    evals = gen.get("eval_curves", {})
    series = [Series(f"train {k}", _points(v)) for k, v in train.items() if k in ("loss", "ce")]
    series += [
        Series(f"valid {k}", _points(v), dashed=True, axis="right") for k, v in evals.items()
    ]
    curves = line_chart(
        series, "Generator training", "optimizer step", "train loss", "valid metric", markers=True
    )
    load = gen.get("expert_load", [])
    experts = len(load[0]) if load else 0
    load_chart = bar_chart(
        [f"E{i}" for i in range(experts)],
        [(f"decoder layer {i + 1}", layer) for i, layer in enumerate(load)],
        "Expert load (share of routed tokens)",
        "share",
        "expert",
        reference=1.0 / experts if experts else None,
        reference_label="uniform",
    )
    params = gen.get("parameters", {})
    config = gen.get("config", {})
    text = (
        f'<p class="note">d_model {config.get("d_model")}, {config.get("encoder_layers")}+'
        f"{config.get('decoder_layers')} layers, {config.get('num_experts')} experts (top-{config.get('top_k')}), "
        f"{fmt(params.get('total'))} parameters ({fmt(params.get('active'))} active per token); "
        f"best step {gen.get('best_step')} of {gen.get('final_step')}, "
        f"{fmt(gen.get('train_seconds'))} s of training.</p>"
    )
    metrics = gen.get("metrics", {})
    rows = [[split, *(m.get(k) for k in RANKING_KEYS)] for split, m in metrics.items()]
    return text + _grid(curves, load_chart) + table(["split", *RANKING_KEYS], rows)


def reward_html(reward: dict[str, Any], table: TableFn) -> str:
    series = [Series("train loss", _points(reward.get("train_curves", {}).get("loss", [])))]
    series.append(
        Series(
            "valid loss", _points(reward.get("eval_curves", {}).get("valid_loss", [])), dashed=True
        )
    )
    chart = line_chart(series, "Reward model training", "optimizer step", "loss", markers=True)
    sessions = reward.get("sessions", {})
    text = (
        f'<p class="note">sessions train / valid / test: {sessions.get("train")} / {sessions.get("valid")} / '
        f"{sessions.get('test')} (temporal split); targets: "
        f"{', '.join(t['name'] + '=' + t['column'] for t in reward.get('targets', []))}.</p>"
    )
    return text + _grid(chart) + reward_table(reward.get("results", {}), table)


def ipa_html(ipa: dict[str, Any], table: TableFn) -> str:
    evaluations = ipa.get("evaluations", [])
    iterations = ipa.get("iterations", [])
    series = [
        Series(
            "held-out users: top session",
            [(i, e.get("reward", math.nan)) for i, e in enumerate(evaluations)],
        )
    ]
    series.append(
        Series(
            "sampled users: chosen",
            [(it["iteration"], it["chosen_reward"]) for it in iterations],
            dashed=True,
        )
    )
    series.append(
        Series(
            "sampled users: rejected",
            [(it["iteration"], it["rejected_reward"]) for it in iterations],
            dashed=True,
        )
    )
    chart = line_chart(
        series,
        "Combined reward (reward-model estimate) per IPA round",
        "round (0 = before IPA)",
        "combined reward",
        markers=True,
    )
    before, after = (evaluations[0], evaluations[-1]) if evaluations else ({}, {})
    targets = [k for k in before if k != "reward"]
    relative = bar_chart(
        targets,
        [
            (
                "after / before",
                [
                    after.get(k, math.nan) / before[k] if before.get(k) else math.nan
                    for k in targets
                ],
            )
        ],
        "Per-target reward after IPA relative to before",
        "after / before",
        "target",
        reference=1.0,
        reference_label="no change",
    )
    rows = [
        [
            it["iteration"],
            it["users"],
            it["pairs"],
            it["chosen_reward"],
            it["rejected_reward"],
            it["dpo_margin_after"],
            it["dpo_accuracy_after"],
            it["kl_estimate"],
        ]
        for it in iterations
    ]
    text = (
        f'<p class="note">{ipa.get("rounds")} rounds, {fmt(100 * ipa.get("user_fraction", 0.0), 3)} % of '
        f"{ipa.get('pool_users')} users sampled per round; rewards are the reward model's estimates for "
        f"{ipa.get('held_out_users')} held-out users never sampled for DPO; weights {ipa.get('reward_weights')}.</p>"
    )
    return (
        text
        + _grid(chart, relative)
        + table(
            [
                "round",
                "users",
                "pairs",
                "chosen",
                "rejected",
                "DPO margin",
                "DPO accuracy",
                "KL estimate",
            ],
            rows,
        )
    )


def crm_html(crm: dict[str, Any], table: TableFn) -> str:
    fixed = crm.get("fixed_test", [])
    ks = crm.get("ks", [50, 100])
    k = ks[-1] if ks else 100
    target = crm.get("condition_target", "target")
    scale = 1000.0 if target == "play_time_ms" else 1.0
    unit = " (s)" if scale == 1000.0 else ""
    series = [
        Series(
            f"logged {target}{unit} of hits@{k}",
            [(r["quantile"], r.get(f"hit_target@{k}", math.nan) / scale) for r in fixed],
        ),
        Series(
            "condition value" + unit,
            [(r["quantile"], r["value"] / scale) for r in fixed],
            dashed=True,
        ),
        Series(
            "target AUC",
            [(r["quantile"], r.get("target_auc", math.nan)) for r in fixed],
            axis="right",
        ),
    ]
    control = line_chart(
        series,
        "CRM control: logged target vs condition (test)",
        "condition (training quantile)",
        f"{target}{unit}",
        "target AUC",
        markers=True,
    )
    recall = line_chart(
        [
            Series(
                f"recall@{kk}", [(r["quantile"], r.get(f"recall@{kk}", math.nan)) for r in fixed]
            )
            for kk in ks
        ],
        "Recall vs condition (test)",
        "condition (training quantile)",
        "recall",
        markers=True,
    )
    evals = crm.get("eval_curves", {})
    training = line_chart(
        [Series(f"valid {key}", _points(v)) for key, v in evals.items()],
        "CRM training (validation, mean strategy)",
        "optimizer step",
        "recall",
        markers=True,
    )
    text = (
        f'<p class="note">condition {escape(str(crm.get("condition")))} on {escape(str(target))}, '
        f"{crm.get('num_condition_levels')} levels; {crm.get('train_examples')} training examples, "
        f"{crm.get('test_users')} test users; ANN recall@100 vs exact {fmt(crm.get('ann_recall@100'))}.</p>"
    )
    return (
        text
        + _grid(control, recall, training)
        + crm_table(crm.get("control", {}).get("test", []), table)
    )


def bundle_html(bundle: dict[str, Any], table: TableFn) -> str:
    return f"<p>Serve it: <code>{escape(str(bundle.get('command', '')))}</code></p>" + table(
        ["part", "source"],
        [["generator", bundle.get("generator")], ["retrieval", bundle.get("retrieval")]],
    )
