"""``tui-trainer presets list | show NAME | fit NAME --level L``.

``fit`` prints the resolved run config as TOML on stdout (``> run.toml`` and it is ready
for ``tui-trainer train``); the notes and the memory breakdown go to stderr so stdout
stays valid TOML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tui_trainer.errors import ConfigError

BYTES_PER_TOKEN_GUESS = 4
"""Typical BPE rate for English text and code: about four characters per token."""
_TEXT_SUFFIXES = (".jsonl", ".json", ".txt", ".csv")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("presets", help="list, show or fit model presets")
    actions = p.add_subparsers(dest="presets_action", metavar="ACTION")
    p.set_defaults(func=cmd_list)

    a = actions.add_parser("list", help="the known presets (shipped and your own)")
    a.set_defaults(func=cmd_list)

    a = actions.add_parser("show", help="one preset's model facts and levels")
    a.add_argument("name")
    a.set_defaults(func=cmd_show)

    a = actions.add_parser("fit", help="resolve a preset for this machine and print the run config as TOML")
    a.add_argument("name")
    a.add_argument("--level", required=True, choices=("highspeed", "quality", "bestaccuracy"))
    a.add_argument("--vram", type=float, metavar="GB", help="plan for a GPU with this much memory, not this machine's")
    a.add_argument("--tokens", type=int, metavar="N", help="training tokens (picks small/medium/large data settings)")
    a.add_argument("--dataset", action="append", default=[], metavar="PATH", help="add a dataset (repeatable)")
    a.add_argument("--config", type=Path, metavar="FILE", help="start from this run config (keeps its datasets)")
    a.add_argument("--out", type=Path, metavar="FILE", help="write the TOML here instead of stdout")
    a.set_defaults(func=cmd_fit)


def cmd_list(args: argparse.Namespace) -> int:
    from tui_trainer.planning.presets import LEVELS, load_presets, params_label, user_presets_dir

    presets = load_presets()
    rows = [("NAME", "PARAMS", "TRAINS", "MODEL", "FROM")]
    for p in presets.values():
        trains = "LoRA" if p.lora_enabled else "all weights"
        origin = "user" if p.user_defined else "shipped"
        rows.append((p.family, params_label(p.facts.params), trains, p.facts.hub_id, origin))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nlevels: {', '.join(LEVELS)}. Your own presets: {user_presets_dir()}/*.toml")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tui_trainer.planning.presets import SIZE_CLASSES, get_preset, params_label

    p = get_preset(args.name)
    f = p.facts
    lines = [
        f"{p.family}: {p.description}" if p.description else p.family,
        f"  model         {f.hub_id} ({f.model_type}, {params_label(f.params)} parameters)",
        f"  shape         {f.layers} layers, hidden {f.hidden}, intermediate {f.intermediate}, vocab {f.vocab}, "
        f"{f.heads} heads / {f.kv_heads} kv heads, context {f.max_position_embeddings}",
        f"  trains        {'LoRA on ' + ', '.join(p.target_modules) if p.lora_enabled else 'all weights (no LoRA)'}",
        f"  chat template {p.chat_template_note}",
        f"  defined in    {', '.join(str(s) for s in p.merged_from)}",
        "",
    ]
    for name, level in p.levels.items():
        lora = ""
        if p.lora_enabled:
            lora = f", LoRA r={level.lora_r} alpha={level.lora_alpha:g} dropout={level.lora_dropout:g}"
        lines.append(f"  {name}: {level.description}".rstrip())
        lines.append(
            f"    lr {level.lr:g} ({level.lr_scheduler}, warmup {level.warmup_ratio:g}), {_epochs(level.epochs)}, "
            f"seq {level.max_seq_len}, effective batch {level.effective_batch}{lora}"
        )
        for size in SIZE_CLASSES:
            adj = getattr(level, size)
            if adj is None:
                continue
            r = level.for_size(size)
            lines.append(
                f"    {size} data: lr {r.lr:g}, {_epochs(r.epochs)}, effective batch {r.effective_batch}, "
                f"warmup {r.warmup_ratio:g}"
            )
    print("\n".join(lines))
    return 0


def _epochs(n: float) -> str:
    return f"{n:g} epoch" + ("" if n == 1 else "s")


def _guess_tokens(paths: list[str]) -> int | None:
    """Training tokens guessed from text file sizes; None when any dataset is not a local text file."""
    total = 0
    for item in paths:
        path = Path(item).expanduser()
        files = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else []
        texts = [q for q in files if q.suffix.lower() in _TEXT_SUFFIXES]
        if not texts or len(texts) != len(files):
            return None
        total += sum(q.stat().st_size for q in texts)
    return total // BYTES_PER_TOKEN_GUESS


def _dataset_entries(paths: list[str]) -> list[dict[str, Any]]:
    entries, names = [], set()
    for item in paths:
        stem = Path(item.rstrip("/")).stem.removeprefix("demo:") or "data"
        name, n = stem, 2
        while name in names:
            name, n = f"{stem}-{n}", n + 1
        names.add(name)
        entries.append({"name": name, "path": item})
    return entries


def cmd_fit(args: argparse.Namespace) -> int:
    from tui_trainer.config.schema import RunConfig, config_from_dict
    from tui_trainer.config.io import dumps_config, load_config
    from tui_trainer.planning.fitting import fit_preset
    from tui_trainer.planning.hardware import detect_hardware

    if args.tokens is not None and args.tokens < 0:
        raise ConfigError(f"--tokens must be >= 0, got {args.tokens}")
    base = load_config(args.config) if args.config else RunConfig()
    if args.dataset:
        raw = base.to_dict()
        raw["data"]["datasets"] = [*raw["data"]["datasets"], *_dataset_entries(args.dataset)]
        base = config_from_dict(raw, source="--dataset")
    elif not base.data.datasets and args.name == "demo-tiny":
        from tui_trainer.demo.catalog import demo_run_config

        raw = base.to_dict()
        raw["data"]["datasets"] = [d.model_dump(exclude_none=True) for d in demo_run_config().data.datasets]
        base = config_from_dict(raw, source="demo corpora")

    tokens, how = args.tokens, "given"
    if tokens is None and args.dataset:
        tokens = _guess_tokens(args.dataset)
        how = f"guessed from file sizes at {BYTES_PER_TOKEN_GUESS} bytes per token; pass --tokens for the real count"
    hardware = detect_hardware(args.vram)
    result = fit_preset(args.name, args.level, hardware, data_tokens=tokens, base=base)

    err = sys.stderr
    print(f"# {args.name} ({args.level}) on {hardware.describe()}", file=err)
    if tokens is not None:
        print(f"# data: {tokens:,} tokens ({how})", file=err)
    for note in result.notes:
        print(f"# {note}", file=err)
    print(result.estimate.format(), file=err)
    if not result.config.data.datasets:
        print("# add [[data.datasets]] tables (or pass --dataset PATH) before training", file=err)
    text = dumps_config(result.config)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"# wrote {args.out}; train it with: tui-trainer train {args.out}", file=err)
    else:
        sys.stdout.write(text)
    return 0
