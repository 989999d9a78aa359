"""A tiny fast tokenizer (byte-level BPE, bos/eos/pad, ChatML-like chat template) for data tests.

Built in well under a second from a few sentences, so the data tests never depend on the
demo model or the network. Import the fixture into a test module to make pytest find it:
``from tests.unit.data_fixtures import tiny_tokenizer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "Packing joins documents with an end-of-sequence token between them.",
    "What is two plus two? Two plus two is four.",
    "user assistant system hello world, training rows and labels.",
    "Sphinx of black quartz, judge my vow. 0123456789",
)


def build_tiny_tokenizer(texts: Iterable[str] = SENTENCES, vocab_size: int = 400, add_bos: bool = False):
    """A ``PreTrainedTokenizerFast``; ``add_bos`` makes it prepend BOS like Llama tokenizers do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, clean_up_tokenization_spaces=False
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_bos_tokenizer():
    return build_tiny_tokenizer(add_bos=True)


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def spec(path: Any, name: str = "ds", **fields: Any):
    from tui_trainer.config.schema import DatasetSpec

    return DatasetSpec(name=name, path=str(path), **fields)
