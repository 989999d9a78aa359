"""``tui-trainer prepare FILE``: tokenize, pack and cache a config's datasets and print their statistics."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any



def register(subparsers: Any) -> None:
    p = subparsers.add_parser("prepare", help="tokenize/pack/cache the config's datasets and print statistics")
    p.add_argument("file", type=Path, help="run config (TOML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.set_defaults(func=run_prepare)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


_SHAPE_LABELS = {"prompt_completion": "prompt/compl", "pretokenized": "token ids"}


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def run_prepare(args: argparse.Namespace) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from tui_trainer.config.io import load_config
    from tui_trainer.data.prep.prepare import prepare_all

    console = Console()
    cfg = load_config(args.file, args.set)
    if not cfg.data.datasets:
        console.print(f"{args.file}: no datasets configured ([[data.datasets]] is empty); nothing to prepare", markup=False)
        return 0
    from tui_trainer.engine.model import load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(cfg, resolve_model_path(cfg.model.name_or_path, tokenizer_only=True, gguf_file=cfg.model.gguf_file))
    rss_before = peak_rss_bytes()
    start = time.perf_counter()
    prepared = prepare_all(cfg, tokenizer)
    seconds = time.perf_counter() - start

    mode = "packed" if cfg.data.packing else "one document per row"
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        show_edge=False,
        title=f"{len(prepared)} datasets, max_seq_len {cfg.data.max_seq_len}, {mode}",
        caption="fill = tokens / (rows x max_seq_len); cache yes = loaded from the Arrow cache",
    )
    for column in ("dataset", "shape", "records", "tokens", "loss tok", "rows", "eval", "fill", "time", "cache"):
        table.add_column(column, justify="left" if column in ("dataset", "shape") else "right", no_wrap=True)
    for ds in prepared:
        s = ds.stats
        table.add_row(
            s.name, _SHAPE_LABELS.get(s.shape, s.shape), f"{s.rows:,}", f"{s.tokens:,}", f"{s.loss_tokens:,}", f"{s.packed_rows:,}",
            f"{s.eval_rows:,}", f"{s.efficiency:.1%}", f"{s.seconds:.1f}s", "yes" if s.cached else "no",
        )
    console.print(table)
    for ds in prepared:
        console.print(f"{ds.name}: cache {ds.stats.cache_path}", soft_wrap=True)
    for ds in prepared:
        s = ds.stats
        notes = []
        if s.skipped_records:
            notes.append(f"{s.skipped_records:,} records had nothing to train on and were skipped")
        if s.dropped_rows:
            notes.append(f"{s.dropped_rows:,} rows without loss tokens were dropped")
        if notes:
            console.print(f"{s.name}: " + "; ".join(notes))
    _print_expected(console, cfg, prepared)
    peak = peak_rss_bytes()
    console.print(
        f"prepared in {seconds:.1f}s; peak RSS {_mib(peak)} "
        f"({_mib(rss_before)} before preparation, with the tokenizer loaded)"
    )
    return 0


def _print_expected(console, cfg, prepared) -> None:
    """What the run will draw from each dataset: samples over all steps and the epochs that means."""
    from tui_trainer.data.mixing.plan import describe_plan
    from tui_trainer.engine.optim import plan_sampler

    sampler, steps = plan_sampler(cfg, prepared)
    samples = sampler.expected_samples()
    epochs = sampler.expected_epochs()
    console.print(f"over {steps:,} steps x {cfg.effective_batch} rows:")
    for p in prepared:
        console.print(f"  {p.name}: ~{samples.get(p.name, 0):,} samples = {epochs.get(p.name, 0.0):.2f} epochs")
    console.print(describe_plan(sampler), soft_wrap=True)
