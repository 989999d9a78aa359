"""The embedded demo: ``demo:`` corpora and model, built once under ``paths.demo_dir()``.

``tui-trainer demo`` and the default config need something to train with no files and
no network. The corpora come from the running Python's standard library and the model
is a tiny random Llama with a tokenizer trained on those corpora; both are built on
first use (a few seconds) and reused afterwards.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tui_trainer import paths
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.demo import chat_corpus, chat_demo
from tui_trainer.demo import classification_demos
from tui_trainer.demo import corpus as demo_corpus
from tui_trainer.demo import gguf_convert, smollm2
from tui_trainer.demo import tiny_llama as demo_model
from tui_trainer.errors import ConfigError, DataError, ModelError

DEMO_PREFIX = "demo:"
DEMO_MODEL = "demo:tiny-llama"
SMOLLM2_MODEL = smollm2.SMOLLM2_MODEL
DEMO_MODELS = (DEMO_MODEL, SMOLLM2_MODEL)
DEMO_CORPORA = tuple(demo_corpus.CORPORA)
"""The plain-text corpora (the tiny model's tokenizer is trained on exactly these)."""
DEMO_CHAT = chat_corpus.CORPUS_NAME
"""Chat records (``messages``): what a stdlib function does, answered with its docstring summary."""


def is_demo_name(name: str) -> bool:
    """True for anything in the ``demo:`` namespace, known or not, so a typo gets a demo-specific error."""
    return isinstance(name, str) and name.startswith(DEMO_PREFIX)


def demo_corpus_path(name: str) -> Path:
    """The corpus as JSONL (one ``{"text": ...}`` per line), extracted on first use."""
    if name == DEMO_CHAT:
        return demo_chat_path()
    spec = demo_corpus.CORPORA.get(name)
    if spec is None:
        valid = ", ".join((*DEMO_CORPORA, DEMO_CHAT))
        raise DataError(f"unknown demo corpus {name!r}; the embedded corpora are {valid}")
    path = paths.demo_dir() / "corpora" / f"{spec.file_stem}.jsonl"
    if path.is_file():
        return path
    documents = demo_corpus.build_documents(spec)
    if not documents:
        raise DataError(
            f"{name}: found no Python source files under {demo_corpus.stdlib_root()}; this Python install "
            "ships without its standard-library sources, so use your own dataset files instead"
        )
    demo_corpus.write_jsonl_atomic(path, documents)
    return path


def demo_chat_path() -> Path:
    """demo:python-chat as JSONL (one ``{"messages": [...]}`` per line), built on first use (under a second)."""
    path = paths.demo_dir() / "corpora" / f"python-chat-v{chat_corpus.CORPUS_FORMAT}.jsonl"
    if path.is_file():
        return path
    records = [chat_corpus.record(fn) for fn in chat_corpus.training_functions()]
    if not records:
        raise DataError(f"{DEMO_CHAT}: found no documented functions in the standard library modules of this Python")
    chat_corpus.write_records_atomic(path, records)
    return path


def iter_corpus_texts(name: str) -> Iterator[str]:
    """The documents of a demo corpus, read back from its JSONL file."""
    with demo_corpus_path(name).open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)["text"]


def _all_corpus_texts() -> Iterator[str]:
    for name in DEMO_CORPORA:
        yield from iter_corpus_texts(name)


def demo_model_dir() -> Path:
    return paths.demo_dir() / "tiny-llama"


def ensure_demo_model() -> Path:
    """The demo model directory, built on first use; loadable offline with Auto* classes.

    The build goes to a private temp dir that is renamed into place, so a reader never sees
    a half-written model; when two processes race, the second rename fails and that process
    uses the winner's (identical) build.
    """
    final = demo_model_dir()
    if demo_model.is_current_build(final):
        return final
    # Materialize the corpora first so their errors surface as DataError, not mid-build.
    for name in DEMO_CORPORA:
        demo_corpus_path(name)
    with paths.build_lock(final):
        if demo_model.is_current_build(final):  # built by the process we waited for
            return final
        _remove_abandoned_builds(final.parent)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tiny-llama.", suffix=".tmp"))
        try:
            demo_model.build_into(tmp, _all_corpus_texts())
            _install(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


ABANDONED_AFTER_S = 3600
"""A temp build dir this old belongs to a process that was killed mid-build (a build takes seconds)."""


def _remove_abandoned_builds(parent: Path) -> None:
    paths.remove_older_than(parent, ".tiny-llama.*", ABANDONED_AFTER_S)


def _install(tmp: Path, final: Path) -> None:
    # A current build in the way came from another process that won the race: the same as ours.
    paths.install_dir(tmp, final, demo_model.is_current_build, final.with_name(f".tiny-llama.old-{os.getpid()}"))


def resolves(name_or_path: str, gguf_file: str | None = None) -> bool:
    """Whether :func:`resolve_model_path` owns this reference (a demo name or a GGUF checkpoint)."""
    return is_demo_name(name_or_path) or gguf_convert.is_gguf_source(name_or_path, gguf_file)


def resolve_model_path(name_or_path: str, gguf_file: str | None = None) -> str:
    """A demo model or a GGUF checkpoint -> its built/converted directory; any other name or path unchanged."""
    if name_or_path == DEMO_MODEL:
        return str(ensure_demo_model())
    if name_or_path in classification_demos.CLASSIFICATION_MODELS:
        return str(classification_demos.classification_model_path(name_or_path))
    if name_or_path == SMOLLM2_MODEL:
        return str(smollm2.ensure_smollm2())
    if gguf_convert.is_gguf_source(name_or_path, gguf_file):
        return str(gguf_convert.ensure_converted(gguf_convert.gguf_path(name_or_path, gguf_file)))
    if is_demo_name(name_or_path) and not Path(name_or_path).exists():
        raise ModelError(
            f"model.name_or_path: unknown demo model {name_or_path!r}; the embedded models are {', '.join(DEMO_MODELS)}"
        )
    return name_or_path


def demo_run_config(steps: int = 80, output_dir: str = "runs") -> RunConfig:
    """The run ``tui-trainer demo`` trains: the random demo model, fully trained on both corpora.

    LoRA is off because a random base gives an adapter nothing to adapt. The sizes and the
    learning rate are tuned so the eval loss falls clearly within 80 steps on 2 CPU cores.
    """
    if steps < 1:
        raise ConfigError(f"demo: --steps must be >= 1, got {steps}")
    # About four evals, the last one at the final step when steps divides evenly.
    eval_every = math.ceil(steps / 4)
    raw = {
        "run": {"name": "demo", "output_dir": output_dir, "seed": 42},
        "model": {"name_or_path": DEMO_MODEL, "dtype": "auto"},
        "lora": {"enabled": False},
        "data": {
            "strategy": "weighted",
            "max_seq_len": 256,
            "packing": True,
            "eval_fraction": 0.01,
            "datasets": [
                {"name": "code", "path": "demo:python-code", "text_field": "text", "weight": 0.7},
                {"name": "docs", "path": "demo:python-docs", "text_field": "text", "weight": 0.3},
            ],
        },
        "train": {
            "max_steps": steps,
            "micro_batch_size": 8,
            "grad_accum": 1,
            "lr": 2e-3,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.1,
            "weight_decay": 0.0,
            "max_grad_norm": 1.0,
            "eval_every": eval_every,
            # 32 rows x 256 tokens per corpus: a steady loss estimate for a fraction of a step's cost.
            "eval_max_rows": 32,
            # The step-0 eval is the random model's loss: the demo shows how far training moved it.
            "eval_at_start": True,
        },
        "checkpoint": {"every_steps": math.ceil(steps / 2), "keep_last": 2, "keep_best": True},
    }
    return config_from_dict(raw, source="demo_run_config()")


def smollm2_demo_config(steps: int | None = None, output_dir: str = "runs") -> RunConfig:
    """The wizard's second demo (``tui-trainer demo --model smollm2``): LoRA on SmolLM2-135M-Instruct, chat corpus."""
    return chat_demo.smollm2_demo_config(chat_demo.DEFAULT_STEPS if steps is None else steps, output_dir)
