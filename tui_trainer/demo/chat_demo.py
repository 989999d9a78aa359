"""The real-model demo: LoRA on SmolLM2-135M-Instruct with ``demo:python-chat``.

It shows what fine-tuning a pretrained chat model does: the held-out eval loss before and
after (``train.eval_at_start``), and the model's answers to questions about functions the
corpus never contained, before and after training (in the console and in ``report.json``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.demo import chat_corpus
from tui_trainer.demo.smollm2 import SMOLLM2_MODEL
from tui_trainer.errors import ConfigError

DEMO_CHAT = chat_corpus.CORPUS_NAME
MAX_NEW_TOKENS = 48
"""Enough for a one-sentence docstring summary; generation on CPU costs about that many forward passes."""


@dataclass(frozen=True)
class SampleAnswer:
    """One held-out question with the model's answer before and after training."""

    question: str
    """What the user asks (about a function the training corpus does not contain)."""
    reference: str
    """The docstring summary: the answer the corpus style would give."""
    before: str
    """Greedy answer of the base model."""
    after: str
    """Greedy answer of the base model with the trained adapter."""


DEFAULT_STEPS = 12
"""Each step is 2 x 256 tokens through a 135M model: about 5 s on 2 CPU cores (12 steps in 58 s,
2026-12-02), so the default run is a minute of training after the baseline eval."""


def smollm2_demo_config(steps: int = DEFAULT_STEPS, output_dir: str = "runs") -> RunConfig:
    """LoRA on SmolLM2-135M-Instruct, sized for a CPU: 256-token rows, 2 per step, an eval before and after."""
    if steps < 1:
        raise ConfigError(f"demo: --steps must be >= 1, got {steps}")
    raw = {
        "run": {"name": "demo-smollm2", "output_dir": output_dir, "seed": 42},
        "model": {"name_or_path": SMOLLM2_MODEL, "dtype": "auto"},
        "lora": {"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "data": {
            "strategy": "uniform",
            "max_seq_len": 256,
            "packing": True,
            "eval_fraction": 0.05,
            "datasets": [{"name": "chat", "path": DEMO_CHAT, "messages_field": "messages"}],
        },
        "train": {
            "max_steps": steps,
            "micro_batch_size": 2,
            "grad_accum": 1,
            "lr": 2e-3,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.1,
            "weight_decay": 0.0,
            "max_grad_norm": 1.0,
            # One eval before the first step and one at the last: a forward over 8 x 256 tokens each.
            "eval_every": steps,
            "eval_max_rows": 8,
            "eval_at_start": True,
        },
        "checkpoint": {"every_steps": 0, "every_minutes": 0, "keep_last": 1, "keep_best": False},
    }
    return config_from_dict(raw, source="smollm2_demo_config()")


def sample_questions(count: int = 3) -> list[chat_corpus.FunctionDoc]:
    return chat_corpus.sample_functions(count)


def generate_answers(model_dir: str | Path, questions: list[str], adapter_dir: str | Path | None = None) -> list[str]:
    """Greedy answers of the model (plus the adapter, when given) to each question, as chat turns."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir is not None:
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings():  # a transformers deprecation raised inside peft, not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    answers = []
    with torch.inference_mode():
        for q in questions:
            enc = tokenizer.apply_chat_template(
                [{"role": "user", "content": q}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            out = model.generate(
                **enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
            answers.append(tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    del model
    return answers


def add_to_report(run_dir: Path, samples: list[SampleAnswer]) -> None:
    """Add a ``generations`` section to the run's report.json (rewritten atomically)."""
    report_path = Path(run_dir) / "report.json"
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    report["generations"] = [asdict(s) for s in samples]
    fd, tmp = tempfile.mkstemp(dir=report_path.parent, prefix=".report.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, report_path)


def format_samples(samples: list[SampleAnswer]) -> str:
    """Console lines; an answer's own line breaks are folded so each answer reads as one entry."""
    lines = []
    for s in samples:
        before, after = (" ".join(text.split()) for text in (s.before, s.after))
        lines += [f"Q: {s.question}", f"  before: {before}", f"  after:  {after}", f"  (docstring: {s.reference})"]
    return "\n".join(lines)


@dataclass
class ChatDemo:
    """``tui-trainer demo --model smollm2``: the config, and the answers of the base model to compare against."""

    cfg: RunConfig
    model_dir: Path
    questions: list[chat_corpus.FunctionDoc]
    before: list[str]

    @classmethod
    def start(cls, steps: int | None = None, output_dir: str = "runs") -> ChatDemo:
        """Resolve (convert on first use) the model and ask it the held-out questions before any training."""
        from tui_trainer.demo.smollm2 import ensure_smollm2, is_converted

        cfg = smollm2_demo_config(DEFAULT_STEPS if steps is None else steps, output_dir)
        if not is_converted():
            print("demo: converting SmolLM2-135M-Instruct from its GGUF file once (about a minute)...", flush=True)
        model_dir = ensure_smollm2()
        questions = sample_questions()
        before = generate_answers(model_dir, [chat_corpus.question(q) for q in questions])
        return cls(cfg, model_dir, questions, before)

    def finish(self, result) -> list[SampleAnswer]:
        """Ask again with the trained adapter; print both and add them to report.json."""
        run_dir = Path(result.run_dir)
        after = generate_answers(self.model_dir, [chat_corpus.question(q) for q in self.questions], run_dir / "final")
        samples = [
            SampleAnswer(chat_corpus.question(q), q.summary, b, a) for q, b, a in zip(self.questions, self.before, after)
        ]
        add_to_report(run_dir, samples)
        print("demo: answers to held-out questions, before -> after training", flush=True)
        print(format_samples(samples), flush=True)
        return samples
