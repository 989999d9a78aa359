"""Checkpoint cost: save and load against the disk's own limit, and resume-to-first-step against a fresh start.

For each variant (full fine-tuning and LoRA on the embedded demo model) a short real run
leaves checkpoints behind; the benchmark loads one into a freshly built model, optimizer
and scheduler (so the state is a real run's: AdamW moments, schedule, sampler position),
then, in interleaved repeats, times:

  save        CheckpointManager.save with the engine's write_checkpoint_files (serialize,
              fsync every file, sha256 manifest, fsync dir, rename)
  write_fsync baseline: the same total bytes written to one file with os.write + os.fsync
  load        verify_checkpoint(full=True) + read_trainer_state_strict + load_weights +
              load_training_state
  read        baseline: the baseline file read back with os.read
  load_cold / read_cold   the same after posix_fadvise(DONTNEED) on every file, so both
              read from the disk instead of the page cache (where the kernel allows it)

and, with ``train()`` itself, the time from calling it to its first StepMetrics event
for a fresh start and for ``resume=<checkpoint>``, alternated in the same run.
Ratios use medians: save / write_fsync, load / read, resume_first_step / fresh_first_step.

    .venv/bin/python benchmarks/checkpoint.py [--repeats 5] [--variants full,lora] [--quick]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from _common import demo_config, emit, machine, ratio, set_threads, stats

CHUNK = 1 << 20


def _drop_cache(path: Path) -> bool:
    """Ask the kernel to forget ``path``'s (clean, fsynced) pages; False where that is not supported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    finally:
        os.close(fd)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def write_fsync(path: Path, payload: bytes) -> float:
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(payload)
        for offset in range(0, len(view), CHUNK):
            os.write(fd, view[offset : offset + CHUNK])
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def read_back(path: Path) -> float:
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, CHUNK):
            pass
    finally:
        os.close(fd)
    return time.perf_counter() - start


def short_run(cfg) -> Path:
    """A real run that leaves checkpoints at every ``checkpoint.every_steps``; returns its run dir."""
    from tui_trainer.api import train

    result = train(cfg)
    if result.status != "finished" or result.run_dir is None:
        raise RuntimeError(f"set-up run did not finish: {result.message}")
    return result.run_dir


def run_state(cfg, checkpoint: Path) -> tuple[Any, Any, Any]:
    """A model, optimizer and scheduler built as the engine builds them (CPU, one process)."""
    from tui_trainer.engine.model import load_model, plan_precision, resolve_model_path
    from tui_trainer.engine.optim import make_optimizer, make_scheduler

    device = torch.device("cpu")
    model = load_model(cfg, resolve_model_path(cfg.model.name_or_path), plan_precision(cfg, device), device)
    optimizer = make_optimizer(cfg, model, device)
    scheduler = make_scheduler(cfg, optimizer, cfg.train.max_steps)
    load(checkpoint, model, optimizer, scheduler, lora=cfg.lora.enabled)
    return model, optimizer, scheduler


def load(checkpoint: Path, model, optimizer, scheduler, *, lora: bool) -> dict[str, float]:
    """The engine's resume path for one checkpoint, timed per phase."""
    from tui_trainer.engine.checkpoint.store import verify_checkpoint
    from tui_trainer.engine.checkpoint.state import load_training_state, load_weights, read_trainer_state_strict

    t0 = time.perf_counter()
    problem = verify_checkpoint(checkpoint, full=True)
    if problem is not None:
        raise RuntimeError(f"{checkpoint}: {problem}")
    read_trainer_state_strict(checkpoint)
    t1 = time.perf_counter()
    load_weights(checkpoint, model, lora=lora)
    t2 = time.perf_counter()
    load_training_state(checkpoint, optimizer=optimizer, scheduler=scheduler)
    t3 = time.perf_counter()
    return {"total": t3 - t0, "verify_sha256": t1 - t0, "weights": t2 - t1, "optimizer_scheduler_rng": t3 - t2}


def save(manager, step: int, model, optimizer, scheduler, trainer_state: dict) -> dict[str, Any]:
    from tui_trainer.engine.checkpoint.state import write_checkpoint_files

    serialize = [0.0]

    def write(directory: Path) -> None:
        t = time.perf_counter()
        write_checkpoint_files(
            directory, model=model, optimizer=optimizer, scheduler=scheduler, trainer_state=trainer_state
        )
        serialize[0] = time.perf_counter() - t

    start = time.perf_counter()
    path = manager.save(step, write)
    total = time.perf_counter() - start
    return {"path": path, "total": total, "serialize": serialize[0], "fsync_manifest_rename": total - serialize[0]}


def first_step_seconds(cfg, resume: Path | None) -> float:
    """Seconds from calling train() to its first StepMetrics event; the run is then stopped."""
    from tui_trainer.api import train
    from tui_trainer.engine.events import StepMetrics

    stop = threading.Event()
    first: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, StepMetrics) and not first:
            first.append(time.perf_counter())
            stop.set()

    start = time.perf_counter()
    result = train(cfg, on_event=on_event, stop=stop, resume=resume)
    if not first:
        raise RuntimeError(f"no step event ({'resume' if resume else 'fresh'}): {result.message}")
    return first[0] - start


def bench_variant(root: Path, *, lora: bool, repeats: int, seq_len: int, run_steps: int) -> dict[str, Any]:
    from tui_trainer.engine.checkpoint.store import CheckpointManager, checkpoint_name
    from tui_trainer.engine.checkpoint.state import read_trainer_state_strict

    cfg = demo_config(
        root / "runs", lora=lora, seq_len=seq_len, micro_batch_size=4, grad_accum=2, steps=run_steps,
        every_steps=run_steps // 2, keep_last=50,
    )
    run_dir = short_run(cfg)
    mid = run_dir / "checkpoints" / checkpoint_name(run_steps // 2)  # resumable: the run goes on past it
    final = run_dir / "checkpoints" / checkpoint_name(run_steps)
    model, optimizer, scheduler = run_state(cfg, final)
    trainer_state = read_trainer_state_strict(final)
    manager = CheckpointManager(root / "bench-checkpoints", keep_last=1, keep_best=False)
    baseline = root / "baseline.bin"

    rows: dict[str, list[Any]] = {k: [] for k in ("save", "write_fsync", "load", "read", "load_cold", "read_cold")}
    sizes: dict[str, int] = {}
    cold_ok = True
    for i in range(repeats):
        saved = save(manager, 1000 + i, model, optimizer, scheduler, trainer_state)
        rows["save"].append(saved)
        files = _files(saved["path"])
        sizes = {str(p.relative_to(saved["path"])): p.stat().st_size for p in files}
        payload = os.urandom(sum(sizes.values()))
        rows["write_fsync"].append(write_fsync(baseline, payload))
        rows["load"].append(load(saved["path"], model, optimizer, scheduler, lora=lora))
        rows["read"].append(read_back(baseline))
        for path in [*files, baseline]:
            cold_ok = _drop_cache(path) and cold_ok
        rows["load_cold"].append(load(saved["path"], model, optimizer, scheduler, lora=lora))
        rows["read_cold"].append(read_back(baseline))
        shutil.rmtree(saved["path"])
        baseline.unlink()

    fresh, resumed = [], []
    for _ in range(repeats):
        fresh.append(first_step_seconds(cfg, None))
        resumed.append(first_step_seconds(cfg, mid))

    def med(key: str, part: str = "total") -> float:
        return statistics.median(r[part] if isinstance(r, dict) else r for r in rows[key])

    total_bytes = sum(sizes.values())
    return {
        "lora": lora,
        "checkpoint_bytes": total_bytes,
        "checkpoint_files": sizes,
        "ratios": {
            "save_over_write_fsync": ratio(med("save"), med("write_fsync")),
            "load_over_read": ratio(med("load"), med("read")),
            "load_cold_over_read_cold": ratio(med("load_cold"), med("read_cold")),
            "resume_first_step_over_fresh_first_step": ratio(statistics.median(resumed), statistics.median(fresh)),
        },
        "seconds": {
            "save": stats([r["total"] for r in rows["save"]]),
            "save_parts_median": {p: round(med("save", p), 6) for p in ("serialize", "fsync_manifest_rename")},
            "write_fsync_baseline": stats(rows["write_fsync"]),
            "load": stats([r["total"] for r in rows["load"]]),
            "load_parts_median": {
                p: round(med("load", p), 6) for p in ("verify_sha256", "weights", "optimizer_scheduler_rng")
            },
            "read_baseline": stats(rows["read"]),
            "load_cold": stats([r["total"] for r in rows["load_cold"]]),
            "read_cold_baseline": stats(rows["read_cold"]),
            "fresh_first_step": stats(fresh),
            "resume_first_step": stats(resumed),
        },
        "throughput_mb_s_median": {
            "save": round(total_bytes / med("save") / 1e6, 2),
            "write_fsync_baseline": round(total_bytes / med("write_fsync") / 1e6, 2),
            "load": round(total_bytes / med("load") / 1e6, 2),
            "read_baseline": round(total_bytes / med("read") / 1e6, 2),
        },
        "page_cache_dropped_for_cold": cold_ok,
        "resumed_from": str(mid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats of every measurement")
    parser.add_argument("--variants", default="full,lora", help="comma-separated: full, lora")
    parser.add_argument("--seq-len", type=int, default=64, help="sequence length of the short runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir); its disk is measured")
    parser.add_argument("--run-steps", type=int, default=4, help="steps of the set-up run (resume from the middle)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke setting: LoRA only, 1 repeat, seq 32, 2 steps")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.variants, args.seq_len, args.run_steps = 1, "lora", 32, 2
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - {"full", "lora"})
    if unknown or not variants or args.repeats < 1 or args.run_steps < 2:
        parser.error(
            f"--variants takes full and/or lora (got {args.variants!r}); --repeats must be >= 1, --run-steps >= 2"
        )

    threads = set_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-", dir=args.dir) as tmp:
        for variant in variants:
            results[variant] = bench_variant(
                Path(tmp) / variant,
                lora=variant == "lora",
                repeats=args.repeats,
                seq_len=args.seq_len,
                run_steps=args.run_steps,
            )
        disk = str(Path(tmp).resolve())
    emit(
        {
            "benchmark": "checkpoint",
            "ratios": {v: r["ratios"] for v, r in results.items()},
            "variants": results,
            "config": {
                "model": "demo:tiny-llama",
                "repeats": args.repeats,
                "seq_len": args.seq_len,
                "micro_batch_size": 4,
                "grad_accum": 2,
                "run_steps": args.run_steps,
                "resume_from_step": args.run_steps // 2,
                "directory": disk,
            },
            "torch_threads": threads,
            "machine": machine(),
            "method": (
                "medians of interleaved repeats; baselines write the same total bytes to one file (os.write + "
                "os.fsync) and read it back; warm = page cache, cold = after posix_fadvise DONTNEED; first-step "
                "times run from calling train() to the first StepMetrics event, fresh and resume alternated"
            ),
        }
    )


if __name__ == "__main__":
    main()
