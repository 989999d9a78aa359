"""The engine (``train()``) against ``transformers.Trainer``: tokens/s side by side on the same global batches.

Both sides train the same model from the same weights (the engine's loader, same seed)
with the same LoRA adapter, fused AdamW (``optim="adamw_torch_fused"``, the same two
weight-decay groups), cosine schedule with the same warm-up steps, clipping, micro-batch
(``per_device_train_batch_size``) and accumulation (``gradient_accumulation_steps``), and
the same torch thread count. The Trainer gets the engine's global batches, prefetched
from the same prepared data and seeded sampler, as a dataset of rows in that order with
a sequential sampler (``_get_train_sampler`` overridden), so step k of both sides sees the
same rows in the same micro-batches. Each micro-batch is cut to its longest row, as the
engine does; ``position_ids`` go to the model, no attention mask (the engine's packed
rows). Labels at document starts are -100, so the Trainer's shifted loss and its
``num_items_in_batch`` (labels[..., 1:] != -100 over the accumulated micro-batches) count
exactly the engine's targets: both losses are a global-batch token mean.

Timing window, both sides: end of step 1 to end of step N (a TrainerCallback's
``on_step_end`` and the engine's StepMetrics events), so set-up, the Trainer's dataloader
construction, and the engine's final eval/checkpoint/export stay out. Repeats in ABBA
order (hf, engine, engine, hf, ...); the ratio is median(engine) / median(hf).
Goal: ratio >= 1.0, per-step losses equal within 1e-4 relative.

    .venv/bin/python benchmarks/vs_hf_trainer.py [--steps 20] [--repeats 4] [--threads 1] [--model smollm2] [--quick]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import add_loop_arguments, demo_config, emit, machine, parse_loop_arguments, ratio, set_threads, stats, with_steps
from loop_overhead import Timed, build_model, engine_loop, prefetch

MODELS = {"tiny": "demo:tiny-llama", "smollm2": "demo:smollm2-135m"}


def trainer_rows(batches: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """The global batches as one list of rows, in order; labels masked at document starts."""
    rows = []
    for batch in batches:
        labels = batch["labels"].masked_fill(batch["position_ids"] == 0, -100)
        lengths = batch["attention_mask"].sum(dim=1)
        for i in range(batch["input_ids"].size(0)):
            rows.append(
                {
                    "input_ids": batch["input_ids"][i],
                    "labels": labels[i],
                    "position_ids": batch["position_ids"][i],
                    "length": lengths[i],
                }
            )
    return rows


def collate_trimmed(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack a micro-batch and cut the padding past its longest row (what ``Batch.select`` does)."""
    width = int(max(int(r["length"]) for r in rows))
    widest = max(r["input_ids"].size(0) for r in rows)

    def stack(key: str, fill: int) -> torch.Tensor:
        out = torch.full((len(rows), widest), fill, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : r[key].size(0)] = r[key]
        return out[:, :width]

    return {"input_ids": stack("input_ids", 0), "labels": stack("labels", -100), "position_ids": stack("position_ids", 0)}


def hf_trainer_loop(cfg, batches: list[dict[str, torch.Tensor]], device: torch.device, output_dir: Path) -> Timed:
    from torch.utils.data import SequentialSampler
    from transformers import Trainer, TrainerCallback, TrainingArguments

    model = build_model(cfg, device)
    steps = len(batches)
    wall: list[float] = []
    cpu: list[float] = []
    losses: list[float] = []
    micro_losses: list[torch.Tensor] = []

    class InOrder(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            micro_losses.append(loss)  # sum / num_items_in_batch of this micro-batch: they add up to the step's mean
            return loss

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            losses.append(float(torch.stack(micro_losses).sum()))
            micro_losses.clear()
            wall.append(time.perf_counter())
            cpu.append(time.process_time())

    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=cfg.train.micro_batch_size,
        gradient_accumulation_steps=cfg.train.grad_accum,
        learning_rate=cfg.train.lr,
        lr_scheduler_type=cfg.train.lr_scheduler,
        warmup_steps=int(cfg.train.warmup_ratio * steps),  # the engine's rounding
        weight_decay=cfg.train.weight_decay,
        max_grad_norm=cfg.train.max_grad_norm,
        optim="adamw_torch_fused",
        seed=cfg.run.seed,
        use_cpu=device.type == "cpu",
        bf16=False,
        fp16=False,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=device.type == "cuda",
        remove_unused_columns=False,
    )
    trainer = InOrder(
        model=model, args=args, train_dataset=trainer_rows(batches), data_collator=collate_trimmed, callbacks=[StepClock()]
    )
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its summary; stdout is the JSON
        trainer.train()
    tokens = tuple(int(b["attention_mask"].sum()) for b in batches)
    if len(wall) != steps:
        raise RuntimeError(f"the Trainer ran {len(wall)} steps, expected {steps}")
    return Timed(tuple(wall), tuple(cpu), tokens, tuple(losses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_loop_arguments(parser, steps=20)
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny", help="tiny = demo:tiny-llama; smollm2 = demo:smollm2-135m")
    args = parse_loop_arguments(parser)

    threads = set_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as tmp:
        cfg = demo_config(
            Path(tmp) / "runs", lora=True, seq_len=args.seq_len,
            micro_batch_size=args.micro_batch, grad_accum=args.grad_accum, steps=args.steps,
        )  # fmt: skip
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name_or_path": MODELS[args.model]})})
        batches = prefetch(cfg)
        warm = with_steps(cfg, 2)
        hf_trainer_loop(warm, batches[:2], device, Path(tmp) / "hf-warm")
        engine_loop(warm)
        hf_runs, engine_runs = [], []
        for i in range(args.repeats):
            order = ["hf", "engine"] if i % 2 == 0 else ["engine", "hf"]
            for side in order:
                if side == "hf":
                    hf_runs.append(hf_trainer_loop(cfg, batches, device, Path(tmp) / f"hf-{i}"))
                else:
                    engine_runs.append(engine_loop(cfg))
        threads_after = torch.get_num_threads()

    hf_tps = [r.tokens_per_s for r in hf_runs]
    engine_tps = [r.tokens_per_s for r in engine_runs]
    hf_step = statistics.median(t for r in hf_runs for t in r.step_seconds())
    engine_step = statistics.median(t for r in engine_runs for t in r.step_seconds())
    rel = [abs(a - b) / max(abs(a), 1e-12) for h, e in zip(hf_runs, engine_runs) for a, b in zip(h.losses, e.losses)]
    hf_stats, engine_stats = stats(hf_tps), stats(engine_tps)
    emit(
        {
            "benchmark": "vs_hf_trainer",
            "ratio_engine_over_hf": ratio(engine_stats["median"], hf_stats["median"]),
            "goal": ">= 1.0",
            "hf_trainer_tokens_per_s": hf_stats,
            "engine_tokens_per_s": engine_stats,
            "per_repeat_ratio": [ratio(e, h) for e, h in zip(engine_tps, hf_tps)],
            "step_median": {
                "ratio_engine_over_hf": ratio(hf_step, engine_step),
                "hf_seconds_per_step": round(hf_step, 6),
                "engine_seconds_per_step": round(engine_step, 6),
            },
            "cpu_time": {
                "ratio_engine_over_hf": ratio(
                    statistics.median(r.tokens_per_cpu_s for r in engine_runs),
                    statistics.median(r.tokens_per_cpu_s for r in hf_runs),
                ),
            },
            "same_batches_check": {
                "max_rel_loss_diff": max(rel),
                "within_1e-4": max(rel) <= 1e-4,
                "tokens_equal": all(h.tokens == e.tokens for h, e in zip(hf_runs, engine_runs)),
                "hf_losses": [round(x, 6) for x in hf_runs[0].losses],
                "engine_losses": [round(x, 6) for x in engine_runs[0].losses],
            },
            "timed_steps_per_run": args.steps - 1,
            "tokens_per_timed_run": hf_runs[0].window_tokens,
            "config": {
                "model": MODELS[args.model], "lora": True, "seq_len": args.seq_len,
                "micro_batch_size": args.micro_batch, "grad_accum": args.grad_accum,
                "steps": args.steps, "repeats": args.repeats, "device": str(device), "precision": "fp32",
                "optimizer": "fused AdamW both sides", "scheduler": cfg.train.lr_scheduler,
            },  # fmt: skip
            "torch_threads": {"both_sides": threads, "after_runs": threads_after},
            "machine": machine(),
            "method": (
                "ABBA repeats (hf, engine, engine, hf, ...) after one warm-up run each; window = end of step 1 to end of step N; "
                "Trainer timed by on_step_end, engine by StepMetrics events"
            ),
        }
    )


if __name__ == "__main__":
    main()
