"""``onerec sim``, ``onerec train-reward`` and ``onerec align`` (reward model, simulator, IPA)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from onerec.config import apply_overrides, build_config, read_config_file

SIM_HELP = """Build the ground-truth user simulator; write its logs, or compare it with KuaiRand-1K.

CONFIG (optional, .toml/.yaml) is read for its \\[sim] section (SimConfig: num_users, num_items, num_tags, latent_dim, the feedback-model parameters and \\[sim.logging] for the logging policy); overrides look like sim.num_users=500.

--out DIR writes interactions.parquet + items.parquet (canonical raw tables, ready for `onerec prepare`), item_embeddings.safetensors (stand-in content embeddings) and world/ (the simulator, to score any session with its exact expected rewards).

--compare-kuairand prints the simulator's marginals under uniformly random exposure beside the KuaiRand-1K random-exposure log's (--kuairand PATH, default <data root>/kuairand/random_1k/...); --calibrate first refits the global parameters to that log and prints them; --report FILE saves the table as Markdown.

Example: onerec sim --compare-kuairand --calibrate --report runs/sim_vs_kuairand.md
"""

TRAIN_REWARD_HELP = """Train the reward model (per-target towers over a session) through the common training loop, then evaluate it on the held-out (later) sessions against a per-item-average baseline.

CONFIG sections: \\[data] dataset (named data set or prepared dir), sessions.gap_minutes / sessions.max_items / sessions.history_column, valid_fraction, test_fraction; \\[model] targets (name, column, kind = binary|regression), item_features, d_model, num_layers, ...; \\[train] the TrainConfig; out_dir.

Writes OUT/model (config.json + model.safetensors), OUT/metrics.json and OUT/report.md (the evaluation table), and prints the table.

Example: onerec train-reward configs/reward_kuairand.toml train.epochs=4
"""


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _sim_config(config: Path | None, overrides: list[str] | None) -> Any:
    from onerec.sim.config import SimConfig

    section: dict[str, Any] = {}
    if config is not None and "=" in config.name and not config.exists():
        # `onerec sim a.b=1 ...` without a file: the first argument is an override.
        overrides, config = [str(config), *(overrides or [])], None
    if config is not None:
        section = read_config_file(config).get("sim", {})
    data = apply_overrides({"sim": section}, overrides or [])
    return build_config(SimConfig, data["sim"], source=str(config) if config else "sim config")


def sim(
    config: Annotated[
        Path | None, typer.Argument(help="config file with a \\[sim] section")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="overrides, e.g. sim.num_users=500")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the simulated data set here")
    ] = None,
    compare_kuairand: Annotated[
        bool, typer.Option("--compare-kuairand", help="print simulator vs KuaiRand-1K")
    ] = False,
    calibrate: Annotated[
        bool, typer.Option("--calibrate", help="refit global parameters to KuaiRand-1K first")
    ] = False,
    kuairand: Annotated[
        Path | None, typer.Option("--kuairand", help="path of the KuaiRand-1K random log")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="save the comparison as Markdown")
    ] = None,
) -> None:
    from onerec.data import resolve_data_root
    from onerec.errors import OnerecError
    from onerec.io import atomic_write_text
    from onerec.sim import calibrate as calibrate_fn
    from onerec.sim import marginals, read_kuairand_feedback, write_simulated_dataset
    from onerec.sim.calibrate import (
        KUAIRAND_1K_LOG,
        comparison_markdown,
        comparison_rows,
        simulated_random_exposure,
    )
    from onerec.sim.world import UserSimulator

    console = Console()
    sim_config = _sim_config(config, overrides)
    if not (compare_kuairand or out):
        raise OnerecError("nothing to do: pass --out DIR and/or --compare-kuairand")
    if calibrate and not compare_kuairand:
        raise OnerecError("--calibrate needs --compare-kuairand (it fits to the KuaiRand-1K log)")
    if compare_kuairand:
        path = kuairand or Path(resolve_data_root(None)) / KUAIRAND_1K_LOG
        real = marginals(read_kuairand_feedback(path))
        if calibrate:
            sim_config = calibrate_fn(sim_config, real)
            fitted = {
                k: round(v, 4) for k, v in sim_config.model_dump().items() if isinstance(v, float)
            }
            console.print(
                "calibrated parameters: " + ", ".join(f"{k}={v}" for k, v in fitted.items())
            )
        simulated = marginals(
            simulated_random_exposure(UserSimulator(sim_config), num_pairs=200_000)
        )
        rows = comparison_rows(real, simulated)
        table = Table(title="simulator (uniformly random exposure) vs KuaiRand-1K random log")
        for column in ("statistic", "KuaiRand-1K", "simulator", "fitted"):
            table.add_column(column, justify="left" if column == "statistic" else "right")
        for name, r, s, fitted_flag in rows:
            table.add_row(name, f"{r:.4g}", f"{s:.4g}", "yes" if fitted_flag else "")
        console.print(table)
        if report is not None:
            atomic_write_text(report, comparison_markdown(rows))
            console.print(f"saved {report}")
    if out is not None:
        logs = write_simulated_dataset(UserSimulator(sim_config), out)
        console.print(
            f"wrote {logs.height:,} impressions of {sim_config.num_users:,} users to {out}"
        )


def train_reward(
    config: Annotated[Path, typer.Argument(help="reward config (.toml/.yaml)")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. train.epochs=4")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="output directory (default: out_dir in the config)")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch CPU threads")
    ] = None,
) -> None:
    from onerec.config import load_config
    from onerec.io import atomic_write_json
    from onerec.reward import RewardRecipe
    from onerec.reward import train_reward as train_reward_fn
    from onerec.reward.evaluate import results_markdown
    from onerec.training.distributed import init_distributed, is_main_process

    _set_threads(threads)
    init_distributed()  # under torchrun: every rank trains its share, rank 0 writes OUT
    recipe = load_config(RewardRecipe, config, overrides or [])
    if out is not None:
        recipe = recipe.model_copy(update={"out_dir": str(out)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        run = train_reward_fn(recipe)
    if not is_main_process():
        return
    atomic_write_json(Path(recipe.out_dir) / "run_config.json", recipe.model_dump())
    typer.echo(results_markdown(run.results))
    typer.echo(
        f"sessions train/valid/test: {len(run.data.train):,}/{len(run.data.valid):,}/{len(run.data.test):,}; model in {recipe.out_dir}/model"
    )


ALIGN_HELP = """Iterative Preference Alignment: DPO on the generator's own beam-searched sessions, ranked by a reward model.

CONFIG: generator = a generator model dir (a `onerec train` run's model/ folder); reward_model = train-reward's OUT/model (same data set); \\[data] dataset / max_history (the data set both were trained on); session_items (m); \\[ipa] iterations (T), user_fraction (r, default 0.01), num_candidates (N), beam_width, beta, ntp_weight (λ), use_dpo, reward_weights {swt, vtr, wtr, ltr}, \\[ipa.train] the per-round TrainConfig (max_steps, batch_size, lr); out_dir.

Each round logs users, pairs, chosen/rejected reward, the DPO margin, a KL estimate and the reward-model score of the policy's top sessions. Writes OUT/model (aligned generator, loadable by `onerec recommend`) and OUT/ipa_log.json.

Example: onerec align configs/ipa_kuairand.toml ipa.iterations=1
"""

ALIGN_SIM_HELP = """The IPA experiment with ground truth: simulate logs, train a generator on their positives and a reward model on all their feedback, then run IPA variants and score every round with the simulator's exact expected rewards and Recall@10.

CONFIG: \\[sim] (SimConfig), positive_column, session_items, \\[tokenizer], \\[generator] + \\[generator_train], \\[reward] (a train-reward recipe; its data.dataset is ignored), \\[ipa], eval_users, recall_users, variants (ipa | ntp_only | r_ablation | oracle), r_ablation, out_dir.

Writes OUT/results.json (every round of every variant), OUT/report.md (the table) and OUT/generator, OUT/reward (the trained M_0 and reward model).

Example: onerec align-sim configs/ipa_sim.toml --threads 1
"""


def align(
    config: Annotated[Path, typer.Argument(help="alignment config (.toml/.yaml)")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. ipa.iterations=1")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="output directory (default: out_dir in the config)")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch CPU threads")
    ] = None,
) -> None:
    from onerec.alignment.align_run import AlignConfig, run_align
    from onerec.config import load_config

    _set_threads(threads)
    cfg = load_config(AlignConfig, config, overrides or [])
    if out is not None:
        cfg = cfg.model_copy(update={"out_dir": str(out)})
    run_align(cfg, show=typer.echo)
    typer.echo(f"aligned generator in {cfg.out_dir}/model, log in {cfg.out_dir}/ipa_log.json")


def align_sim(
    config: Annotated[Path, typer.Argument(help="experiment config (.toml/.yaml)")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. ipa.iterations=1")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="output directory (default: out_dir in the config)")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch CPU threads")
    ] = None,
) -> None:
    from onerec.alignment.sim_experiment import report_markdown, run_sim_alignment
    from onerec.alignment.sim_setup import SimAlignConfig
    from onerec.config import load_config

    _set_threads(threads)
    cfg = load_config(SimAlignConfig, config, overrides or [])
    if out is not None:
        cfg = cfg.model_copy(update={"out_dir": str(out)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        results = run_sim_alignment(cfg, show=typer.echo)
    typer.echo(report_markdown(results))
    typer.echo(
        f"total {results['timings']['total_s']:.0f} s; results in {cfg.out_dir}/results.json"
    )


def register(app: typer.Typer) -> None:
    """Attach ``sim``, ``train-reward``, ``align`` and ``align-sim`` to ``app``."""
    app.command("sim", help=SIM_HELP)(sim)
    app.command("train-reward", help=TRAIN_REWARD_HELP)(train_reward)
    app.command("align", help=ALIGN_HELP)(align)
    app.command("align-sim", help=ALIGN_SIM_HELP)(align_sim)
