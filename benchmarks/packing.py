"""Packing: real (non-padding) tokens/s packed against padded, on a length-skewed chat corpus.

The corpus is built offline: chat records (``messages``) whose lengths are skewed the way
real chat data is, most short and a few long (``--long-share``), from a fixed word list
and a seeded RNG. Both variants train the demo model with the same LoRA, optimizer,
micro-batch and accumulation through the real engine (``train()``); only
``data.packing`` differs. The padded variant's pad fraction is measured on its own global
batches as the engine computes them (each micro-batch cut to its longest row), and the
ideal speed-up is 1 / (1 - pad fraction): what packing would give if a padded position
cost exactly what a real one does and packing cost nothing. Goal: measured ratio >= 0.9 x
ideal. Repeats are ABBA (padded, packed, packed, padded, ...), timed between StepMetrics
events (end of step 1 to end of step N).

Loss check: the same documents are scored by the same (initial) model packed and
unpacked. The token streams are identical (same documents, same order), so every token
that is a target in both layouts is compared one to one; packed rows keep documents apart
through position_ids, so their losses must agree to float rounding. Tokens of a document
cut at a packed row boundary (its continuation restarts at position 0 and sees less of
the document) have a different context; they are counted, not compared.

    .venv/bin/python benchmarks/packing.py [--steps 12] [--repeats 4] [--threads 1] [--quick]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from _common import emit, machine, ratio, set_threads, stats
from loop_overhead import build_model, engine_loop, prefetch

WORDS = (
    "the a list of values returns string file path object number error when each item key and for in with "
    "python function class module import default argument name data type call loop index result new old "
    "copy sort read write open close line text byte encode decode parse format split join start end"
).split()


def write_corpus(path: Path, records: int, long_share: float, seed: int) -> dict[str, float]:
    """Chat records: (1 - long_share) short exchanges (4-24 words a turn), long_share long ones (3 turns of 60-140)."""
    rng = random.Random(seed)
    words = []

    def say(lo: int, hi: int) -> str:
        n = rng.randint(lo, hi)
        words.append(n)
        return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."

    with path.open("w", encoding="utf-8") as f:
        for _ in range(records):
            if rng.random() < long_share:
                turns = [("user", say(20, 40)), ("assistant", say(60, 140)), ("user", say(10, 30)), ("assistant", say(60, 140))]
            else:
                turns = [("user", say(4, 12)), ("assistant", say(8, 24))]
            f.write(json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]}) + "\n")
    return {"records": records, "long_share": long_share, "words_per_turn_median": statistics.median(words)}


def config(corpus: Path, output_dir: Path, *, packing: bool, seq_len: int, micro: int, accum: int, steps: int):
    from tui_trainer.config.schema import config_from_dict

    return config_from_dict(
        {
            "run": {"name": "bench-packing", "output_dir": str(output_dir), "seed": 7},
            "model": {"name_or_path": "demo:tiny-llama"},
            "lora": {"enabled": True, "r": 8, "alpha": 16, "dropout": 0.0},
            "data": {
                "max_seq_len": seq_len,
                "packing": packing,
                "eval_fraction": 0.0,
                "datasets": [{"name": "chat", "path": str(corpus)}],
            },
            "train": {
                "max_steps": steps, "micro_batch_size": micro, "grad_accum": accum, "lr": 2e-3,
                "lr_scheduler": "cosine", "warmup_ratio": 0.1, "max_grad_norm": 1.0, "precision": "fp32",
                "eval_every": 0, "eval_max_rows": 1,
            },  # fmt: skip
            "checkpoint": {"every_steps": 0, "every_minutes": 0, "keep_best": False},
        },
        source="benchmark",
    )


def pad_fraction(batches: list[dict[str, torch.Tensor]], micro: int) -> float:
    """Share of the positions the forward computes that are padding (micro-batches cut to their longest row)."""
    real = computed = 0
    for batch in batches:
        lengths = batch["attention_mask"].sum(dim=1)
        for lo in range(0, lengths.numel(), micro):
            part = lengths[lo : lo + micro]
            real += int(part.sum())
            computed += int(part.max()) * part.numel()
    return 1 - real / computed


@torch.no_grad()
def token_losses(cfg, model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(per-token loss, is-a-target, position) over the concatenated token stream of every training row, in row order."""
    from tui_trainer.data.prep.tokenize import IGNORE_INDEX
    from tui_trainer.engine.model import resolve_model_path
    from tui_trainer.tasks.causal_lm import CausalLMTask, shifted_targets

    task = CausalLMTask()
    task.setup(cfg, resolve_model_path(cfg.model.name_or_path))
    prepared = task.prepare(cfg)
    rows = len(prepared[0].train)
    losses, valid, positions = [], [], []
    model.eval()
    for lo in range(0, rows, 8):
        batch = task.collate(prepared, [(0, r) for r in range(lo, min(lo + 8, rows))])
        t = batch.tensors
        logits = model(input_ids=t["input_ids"], position_ids=t["position_ids"], use_cache=False).logits.float()
        targets = shifted_targets(t["labels"], t["position_ids"])
        per = F.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")
        for i, length in enumerate(batch.lengths.tolist()):
            # Position t predicts stream token t+1: shift right by one so index = the predicted token.
            losses.append(np.concatenate([[0.0], per[i, : length - 1].numpy()]))
            valid.append(np.concatenate([[False], (targets[i, : length - 1] != IGNORE_INDEX).numpy()]))
            positions.append(t["position_ids"][i, :length].numpy())
    return np.concatenate(losses), np.concatenate(valid), np.concatenate(positions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--records", type=int, default=800)
    parser.add_argument("--long-share", type=float, default=0.15)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke setting: 3 steps, 1 repeat, 120 records, seq 256")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.records, args.seq_len, args.micro_batch, args.grad_accum = 3, 1, 120, 256, 2, 2
    threads = set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as tmp:
        corpus = Path(tmp) / "chat.jsonl"
        corpus_facts = write_corpus(corpus, args.records, args.long_share, seed=11)
        shape = dict(seq_len=args.seq_len, micro=args.micro_batch, accum=args.grad_accum, steps=args.steps)
        packed = config(corpus, Path(tmp) / "runs", packing=True, **shape)
        padded = config(corpus, Path(tmp) / "runs", packing=False, **shape)
        pad_padded = pad_fraction(prefetch(padded), args.micro_batch)  # also prepares both caches before timing
        pad_packed = pad_fraction(prefetch(packed), args.micro_batch)
        model = build_model(packed, torch.device("cpu"))
        loss_packed, valid_packed, pos_packed = token_losses(packed, model)
        loss_padded, valid_padded, pos_padded = token_losses(padded, model)
        del model
        warm = dict(shape, steps=2)
        engine_loop(config(corpus, Path(tmp) / "runs", packing=False, **warm))
        engine_loop(config(corpus, Path(tmp) / "runs", packing=True, **warm))
        runs: dict[str, list] = {"padded": [], "packed": []}
        for i in range(args.repeats):
            for name in (["padded", "packed"] if i % 2 == 0 else ["packed", "padded"]):
                runs[name].append(engine_loop(padded if name == "padded" else packed))

    if loss_packed.shape != loss_padded.shape:
        raise SystemExit(f"token streams differ: {loss_packed.shape} vs {loss_padded.shape} tokens")
    # Same position in both layouts = same document prefix before it: the loss must match.
    same_context = pos_packed == pos_padded
    both = valid_packed & valid_padded & same_context
    diff = np.abs(loss_packed[both] - loss_padded[both])
    mean_packed = float(loss_packed[valid_packed].mean())
    mean_padded = float(loss_padded[valid_padded].mean())
    tps = {k: [r.tokens_per_s for r in v] for k, v in runs.items()}
    measured = ratio(statistics.median(tps["packed"]), statistics.median(tps["padded"]))
    ideal = 1 / (1 - pad_padded)
    ideal_both = (1 - pad_packed) / (1 - pad_padded)
    emit(
        {
            "benchmark": "packing",
            "ratio_packed_over_padded": measured,
            "ideal_ratio": round(ideal, 4),
            "share_of_ideal": round(measured / ideal, 4),
            "goal": "share_of_ideal >= 0.9",
            "pad_fraction_padded": round(pad_padded, 4),
            "pad_fraction_packed": round(pad_packed, 4),
            "ideal_ratio_counting_packed_padding": round(ideal_both, 4),
            "real_tokens_per_s": {"padded": stats(tps["padded"]), "packed": stats(tps["packed"])},
            "per_repeat_ratio": [ratio(a, b) for a, b in zip(tps["packed"], tps["padded"])],
            "step_median_seconds": {k: round(statistics.median(t for r in v for t in r.step_seconds()), 6) for k, v in runs.items()},
            "tokens_per_step": {k: round(v[0].window_tokens / (args.steps - 1), 1) for k, v in runs.items()},
            "loss_check": {
                "tokens_in_stream": int(loss_packed.size),
                "targets_compared": int(both.sum()),
                "max_abs_diff_same_targets": float(diff.max()) if diff.size else None,
                "mean_abs_diff_same_targets": float(diff.mean()) if diff.size else None,
                "targets_cut_by_packing": int((valid_padded & ~same_context).sum()),
                "targets_only_unpacked": int((valid_padded & ~valid_packed).sum()),
                "targets_only_packed": int((valid_packed & ~valid_padded).sum()),
                "mean_loss_packed": round(mean_packed, 6),
                "mean_loss_unpacked": round(mean_padded, 6),
                "note": (
                    "compared: targets of both layouts at the same position (same context); the rest are the tails of "
                    "documents cut at a packed row boundary, which restart at position 0 and see less context"
                ),
            },
            "corpus": corpus_facts,
            "config": {"model": "demo:tiny-llama", "lora": True, **shape, "repeats": args.repeats, "precision": "fp32"},
            "torch_threads": threads,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
