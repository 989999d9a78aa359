"""Training-loop overhead: tokens/s of the engine (``train()``) against a raw torch loop, side by side.

Both sides train the embedded demo model with the same LoRA adapter, AdamW param groups,
cosine schedule, gradient clipping, micro-batching and global-token loss normalization,
on the same global batches (the raw loop gets them pre-fetched from the same seeded
sampler the engine builds) and with the same torch thread count. The raw loop is what a
person would write by hand; everything the engine adds per step (stop-file poll,
sampler draw, row fetch, padding trim, OOM guard, NaN check, per-dataset token counts,
events to callbacks and ``events.jsonl``) is the overhead measured.

Timing window, both sides: from the end of step 1 to the end of step N (N - 1 steps).
For the engine that is the first to the last ``StepMetrics`` event, which keeps set-up,
dataset preparation, the final eval, the final checkpoint and the export out. Periodic
checkpoints and evals are off. Repeats alternate in ABBA order (raw, engine, engine, raw, ...) so that
load changes on a shared machine hit both sides; the ratio is median(engine) / median(raw). The per-step
losses of the two sides are compared as a check that they really ran the same batches.
Target: ratio >= 0.95 on CPU.

    .venv/bin/python benchmarks/loop_overhead.py [--steps 30] [--repeats 3] [--threads N] [--quick]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import add_loop_arguments, demo_config, emit, machine, parse_loop_arguments, ratio, set_threads, stats, with_steps


@dataclass(frozen=True)
class Timed:
    wall: tuple[float, ...]
    """perf_counter at the end of every step 1..N."""
    cpu: tuple[float, ...]
    """process_time (all threads) at the end of every step 1..N."""
    tokens: tuple[int, ...]
    """Non-padding tokens of every step 1..N."""
    losses: tuple[float, ...]
    """Loss of every step 1..N (for the same-batches check)."""

    @property
    def window_tokens(self) -> int:
        return sum(self.tokens[1:])

    @property
    def tokens_per_s(self) -> float:
        """Over the window: end of step 1 to end of step N."""
        return self.window_tokens / (self.wall[-1] - self.wall[0])

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.window_tokens / (self.cpu[-1] - self.cpu[0])

    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.wall, self.wall[1:])]


def prefetch(cfg) -> list[dict[str, torch.Tensor]]:
    """The engine's global batches for ``cfg``: same prepared data, same seeded sampler, same order."""
    from tui_trainer.data.batches import fetch_batch
    from tui_trainer.data.prep.prepare import prepare_all
    from tui_trainer.engine.model import load_tokenizer, resolve_model_path
    from tui_trainer.engine.optim import plan_sampler

    tokenizer = load_tokenizer(cfg, resolve_model_path(cfg.model.name_or_path))
    prepared = prepare_all(cfg, tokenizer)
    sampler, _ = plan_sampler(cfg, prepared)
    return [fetch_batch(prepared, sampler.next_batch().items, tokenizer.pad_token_id) for _ in range(cfg.train.max_steps)]


def build_model(cfg, device: torch.device) -> torch.nn.Module:
    """The engine's model (same loader, same seed before it), so both sides start from identical weights."""
    from tui_trainer.engine.model import load_model, plan_precision, resolve_model_path
    from tui_trainer.engine.rng import seed_everything

    seed_everything(cfg.run.seed)
    return load_model(cfg, resolve_model_path(cfg.model.name_or_path), plan_precision(cfg, device), device)


def raw_loop(cfg, batches: list[dict[str, torch.Tensor]], device: torch.device) -> Timed:
    """A hand-written loop: plain AdamW, HF cosine schedule, accumulation, clipping; nothing else."""
    from transformers import get_cosine_schedule_with_warmup

    model = build_model(cfg, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.train.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=cfg.train.lr,
        fused=True,  # the engine's choice on CPU and CUDA; the same kernel keeps losses bitwise equal
    )
    steps = len(batches)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.train.warmup_ratio * steps), steps)
    micro = cfg.train.micro_batch_size
    model.train()
    losses: list[float] = []
    tokens: list[int] = []
    wall: list[float] = []
    cpu: list[float] = []
    for batch in batches:
        n_loss_tokens = int(batch["n_targets"].sum())  # labelled tokens that do not start a document
        scale = 1.0 / max(n_loss_tokens, 1)
        loss_sum = torch.zeros((), device=device)
        for lo in range(0, batch["input_ids"].size(0), micro):
            mask = batch["attention_mask"][lo : lo + micro]
            width = int(mask.sum(dim=1).max())
            ids = batch["input_ids"][lo : lo + micro, :width].to(device)
            labels = batch["labels"][lo : lo + micro, :width].to(device)
            positions = batch["position_ids"][lo : lo + micro, :width].to(device)
            # Packed documents kept apart as the engine does: position_ids (block-causal), no first-token target.
            logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits
            targets = labels[:, 1:].masked_fill(positions[:, 1:] == 0, -100)
            part = F.cross_entropy(
                logits[:, :-1, :].reshape(-1, logits.size(-1)).float(),
                targets.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            (part * scale).backward()
            loss_sum += part.detach()
        torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        losses.append((loss_sum / max(n_loss_tokens, 1)).item())
        tokens.append(int(batch["attention_mask"].sum()))
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
    return Timed(tuple(wall), tuple(cpu), tuple(tokens), tuple(losses))


def engine_loop(cfg) -> Timed:
    """``train(cfg)`` timed between its first and last StepMetrics events."""
    from tui_trainer.api import train
    from tui_trainer.engine.events import StepMetrics

    seen: list[tuple[float, float, StepMetrics]] = []

    def on_event(event) -> None:
        if isinstance(event, StepMetrics):
            seen.append((time.perf_counter(), time.process_time(), event))

    result = train(cfg, on_event=on_event)
    if result.status != "finished" or len(seen) != cfg.train.max_steps:
        raise RuntimeError(f"engine run ended {result.status} after {len(seen)} step events: {result.message}")
    seen_tokens = [e.tokens_seen for _, _, e in seen]
    return Timed(
        tuple(w for w, _, _ in seen),
        tuple(c for _, c, _ in seen),
        tuple(b - a for a, b in zip([0, *seen_tokens], seen_tokens)),
        tuple(e.loss for _, _, e in seen),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loop_arguments(parser, steps=30)
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    args = parse_loop_arguments(parser)

    threads = set_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        cfg = demo_config(
            Path(tmp) / "runs",
            lora=not args.full,
            seq_len=args.seq_len,
            micro_batch_size=args.micro_batch,
            grad_accum=args.grad_accum,
            steps=args.steps,
        )
        batches = prefetch(cfg)  # also prepares (or finds cached) the demo datasets before any timing
        # Warm-up: one short run per side (allocator, lazy imports, kernels), not counted.
        warm = with_steps(cfg, 2)
        raw_loop(warm, batches[:2], device)
        engine_loop(warm)
        raw_runs, engine_runs = [], []
        for i in range(args.repeats):
            # ABBA order: a load that rises or falls steadily over the run hits both sides alike.
            if i % 2 == 0:
                raw_runs.append(raw_loop(cfg, batches, device))
                engine_runs.append(engine_loop(cfg))
            else:
                engine_runs.append(engine_loop(cfg))
                raw_runs.append(raw_loop(cfg, batches, device))
        threads_after = torch.get_num_threads()

    raw_tps = [r.tokens_per_s for r in raw_runs]
    engine_tps = [r.tokens_per_s for r in engine_runs]
    raw_cpu = [r.tokens_per_cpu_s for r in raw_runs]
    engine_cpu = [r.tokens_per_cpu_s for r in engine_runs]
    # Per-step durations pooled over repeats: a load spike on a shared machine spoils a few
    # steps, not a whole side, so their medians are the noise-robust figure.
    raw_step = statistics.median(t for r in raw_runs for t in r.step_seconds())
    engine_step = statistics.median(t for r in engine_runs for t in r.step_seconds())
    tokens_per_step = raw_runs[0].window_tokens / (args.steps - 1)
    loss_diff = max(abs(a - b) for r, e in zip(raw_runs, engine_runs) for a, b in zip(r.losses, e.losses))
    raw_stats, engine_stats = stats(raw_tps), stats(engine_tps)
    emit(
        {
            "benchmark": "loop_overhead",
            "ratio_engine_over_raw": ratio(engine_stats["median"], raw_stats["median"]),
            "target": ">= 0.95",
            "raw_tokens_per_s": raw_stats,
            "engine_tokens_per_s": engine_stats,
            "per_repeat_ratio": [ratio(e, r) for e, r in zip(engine_tps, raw_tps)],
            "step_median": {
                "ratio_engine_over_raw": ratio(raw_step, engine_step),
                "raw_seconds_per_step": round(raw_step, 6),
                "engine_seconds_per_step": round(engine_step, 6),
                "raw_tokens_per_s": round(tokens_per_step / raw_step, 3),
                "engine_tokens_per_s": round(tokens_per_step / engine_step, 3),
            },
            "cpu_time": {
                "ratio_engine_over_raw": ratio(statistics.median(engine_cpu), statistics.median(raw_cpu)),
                "raw_tokens_per_cpu_s": stats(raw_cpu),
                "engine_tokens_per_cpu_s": stats(engine_cpu),
                "note": "process CPU time of all threads; less sensitive to other processes than wall time",
            },
            "timed_steps_per_run": args.steps - 1,
            "tokens_per_timed_run": raw_runs[0].window_tokens,
            "same_batches_check": {
                "max_abs_loss_diff": loss_diff,
                # Equal up to the summation order of the engine's chunked cross-entropy (fp32 rounding only).
                "losses_equal": loss_diff <= 1e-5 * max(1.0, abs(raw_runs[0].losses[-1])),
                "tokens_equal": all(r.tokens == e.tokens for r, e in zip(raw_runs, engine_runs)),
                "final_loss": raw_runs[0].losses[-1],
            },
            "config": {
                "model": "demo:tiny-llama",
                "lora": not args.full,
                "seq_len": args.seq_len,
                "micro_batch_size": args.micro_batch,
                "grad_accum": args.grad_accum,
                "steps": args.steps,
                "repeats": args.repeats,
                "device": str(device),
                "precision": "fp32",
            },
            "torch_threads": {"both_sides": threads, "after_runs": threads_after},
            "machine": machine(),
            "method": (
                "interleaved repeats in ABBA order (raw, engine, engine, raw, ...) after one warm-up run each; window = end of step 1 to end of "
                "step N; engine timed by StepMetrics events (set-up, final eval, final checkpoint, export excluded)"
            ),
        }
    )
    if not all(math.isfinite(x) for x in raw_tps + engine_tps):
        raise SystemExit("non-finite throughput")


if __name__ == "__main__":
    main()
