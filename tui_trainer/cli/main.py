"""The ``tui-trainer`` command (DESIGN §4.1).

Exit codes: 0 finished, 2 bad input (one paragraph on stderr, no traceback), 75 stopped
with a resumable checkpoint, 1 anything else (a bug: traceback kept).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from pathlib import Path

from tui_trainer.errors import UserError

EXIT_USER = 2

# Subcommands contributed by their own modules: each has register(subparsers).
_PLUGIN_MODULES = ("tui_trainer.cli.prepare", "tui_trainer.cli.presets", "tui_trainer.cli.search", "tui_trainer.cli.report", "tui_trainer.cli.bench")


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # tqdm bars from transformers/datasets would tear through the rich display and the TUI.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore", module="pynvml")


def _cmd_train(args: argparse.Namespace) -> int:
    from tui_trainer.cli.train import cmd_train

    return cmd_train(args, _run_headless)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.task == "sae":
        from tui_trainer.tasks.sae.demo import print_summary, sae_demo_config

        cfg = sae_demo_config(steps=args.steps, output_dir=str(args.out), model=args.model)
        return _run_headless(cfg, resume=None, max_steps=None, merge=False, after=print_summary)
    if args.task == "classification":
        from tui_trainer.cli.demo_classification import classification_demo

        cfg, after = classification_demo(args.steps, str(args.out))
        return _run_headless(cfg, resume=None, max_steps=None, merge=False, after=after)
    if args.model == "smollm2":
        from tui_trainer.demo.chat_demo import ChatDemo

        chat = ChatDemo.start(steps=args.steps, output_dir=str(args.out))
        return _run_headless(chat.cfg, resume=None, max_steps=None, merge=False, demo=True, after=chat.finish)
    from tui_trainer.demo.catalog import demo_run_config

    cfg = demo_run_config(steps=80 if args.steps is None else args.steps, output_dir=str(args.out))
    return _run_headless(cfg, resume=None, max_steps=None, merge=False, demo=True)


def _run_headless(cfg, *, resume, max_steps, merge, demo: bool = False, after=None) -> int:
    from tui_trainer.api import train
    from tui_trainer.engine.control import Controls
    from tui_trainer.engine.signals import graceful_signals, stderr_notify
    from tui_trainer.cli.progress import ProgressDisplay
    from tui_trainer.cli.train import is_main_rank

    # This process lives for one run: freeze what the imports made, so each gc.collect() of the
    # run (a fresh dataset's unmap, the cleanup that gives memory back) skips the ~450k
    # import-time objects: 0.37 s a collection on this machine, about 0 once frozen.
    gc.freeze()
    controls = Controls()
    if not is_main_rank():  # torchrun's other ranks: rank 0 shows and reports the run
        with graceful_signals(controls):
            return train(cfg, resume=resume, controls=controls, max_steps=max_steps, merge=merge).exit_code
    with graceful_signals(controls, notify=stderr_notify), ProgressDisplay() as display:
        result = train(cfg, on_event=display, resume=resume, controls=controls, max_steps=max_steps, merge=merge)
    stream = sys.stdout if result.exit_code == 0 else sys.stderr
    try:
        print(result.message, file=stream, flush=True)
        if demo and display.first_eval and display.last_eval:
            ratio = display.last_eval / display.first_eval
            m = result.metrics
            print(
                f"demo: eval loss {display.first_eval:.3f} -> {display.last_eval:.3f} ({ratio:.2f}x) in "
                f"{m.get('steps')} steps, {m.get('seconds', 0):.0f}s, {m.get('tokens_per_s', 0):,.0f} tokens/s",
                flush=True,
            )
        if after is not None and result.exit_code == 0:
            after(result)
    except OSError:
        pass  # the terminal went away (SIGHUP); the run directory has everything
    return result.exit_code


def _cmd_runs(args: argparse.Namespace) -> int:
    from tui_trainer.cli.runs_table import print_runs

    return print_runs(Path(args.dir), verify=args.verify)


def _cmd_tui(args: argparse.Namespace) -> int:
    from tui_trainer.ui.launch import run_app

    config_path = args.config
    if args.demo:
        from tui_trainer.config.io import save_config
        from tui_trainer.demo.catalog import demo_run_config
        from tui_trainer.paths import demo_dir

        config_path = demo_dir() / "demo.toml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        save_config(demo_run_config(output_dir=str(args.output_dir or "runs")), config_path)
    return run_app(config_path=config_path, start=args.start, output_dir=args.output_dir)


def _cmd_monitor(args: argparse.Namespace) -> int:
    from tui_trainer.errors import ResumeError
    from tui_trainer.ui.launch import run_app

    run_dir = Path(args.run_dir)
    if not (run_dir / "events.jsonl").is_file():
        raise ResumeError(f"{run_dir}: not a run directory (no events.jsonl); `tui-trainer runs` lists runs")
    return run_app(monitor_run=run_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-trainer",
        description="Fine-tune transformer models from the terminal. Without a command, opens the TUI.",
    )
    from tui_trainer import __version__

    parser.add_argument("--version", action="version", version=f"tui-trainer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("tui", help="open the TUI (optionally with a config loaded)")
    p.add_argument("--config", type=Path, help="run config (TOML) to load")
    p.add_argument("--demo", action="store_true", help="load the embedded demo's config (tiny model, demo corpora)")
    p.add_argument("--start", action="store_true", help="start training at once and show the monitor")
    p.add_argument("--output-dir", type=Path, help="where to look for runs (default: the config's or ./runs)")
    p.set_defaults(func=_cmd_tui)

    p = sub.add_parser("train", help="headless training with a progress display")
    p.add_argument("file", type=Path, help="run config (TOML)")
    p.add_argument("--resume", metavar="auto|PATH", help="auto: newest valid checkpoint of this config's runs; or a run dir / checkpoint")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. train.lr=1e-4")
    p.add_argument("--merge", action="store_true", help="also save the LoRA-merged model in final/merged")
    from tui_trainer.cli.train import add_launch_options

    add_launch_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("demo", help="train the embedded demo model on the demo corpora (no files needed)")
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny",
                   help="tiny: random tiny Llama, fully trained; smollm2: LoRA on SmolLM2-135M-Instruct (chat demo)")
    p.add_argument("--task", choices=("causal_lm", "sae", "classification"), default="causal_lm",
                   help="causal_lm: train the model; sae: a sparse autoencoder on a layer of the frozen model; "
                   "classification: a tiny ViT on imbalanced digits, per-class recall before/after")
    p.add_argument("--steps", type=int, help="optimizer steps (default 80 for tiny, 12 for smollm2, 60 for --task sae)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="output directory (default ./runs)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("runs", help="list runs and their checkpoints")
    p.add_argument("dir", nargs="?", default="runs", help="output directory (default ./runs)")
    p.add_argument("--verify", action="store_true", help="also check every checkpoint's sha256 (slow for big models)")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("monitor", help="TUI monitor attached to a run of another process")
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=_cmd_monitor)

    for module_name in _PLUGIN_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue  # an optional command whose module is not part of this install
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["tui", *(argv or sys.argv[1:])])
    if args.command == "train" and args.max_steps is not None and args.max_steps <= 0:
        parser.error("--max-steps must be > 0")
    try:
        return int(args.func(args))
    except UserError as err:
        print(f"tui-trainer: error: {err}", file=sys.stderr, flush=True)
        return EXIT_USER
    except KeyboardInterrupt:
        print("tui-trainer: interrupted", file=sys.stderr)
        return 130
