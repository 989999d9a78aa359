"""Build the embedded demo model: a byte-level BPE tokenizer and a tiny random Llama.

The tokenizer is trained on the demo corpora and the weights come from a fixed seed, so
the same Python version builds the same model on every machine, with nothing downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tui_trainer import paths

BUILD_FORMAT = 1
"""Bumped whenever the recipe below changes, so an older cached build is replaced, not reused."""

MARKER_FILE = "tui_trainer_demo.json"
"""Written into the build; its presence with the current format marks a complete, current build."""

BOS, EOS, PAD = "<s>", "</s>", "<pad>"

# ChatML-like turns delimited by the model's own bos/eos. The {% generation %} markers let
# `return_assistant_tokens_mask=True` find the assistant tokens; they render as nothing otherwise.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ bos_token + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] + eos_token }}"
    "{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class DemoModelSpec:
    """Shape of the demo model; sized so 80 full-training steps run in well under two minutes on 2 CPU cores."""

    vocab_size: int = 4096
    """Target BPE vocabulary, special tokens included."""
    hidden_size: int = 256
    """Width of the residual stream."""
    num_hidden_layers: int = 4
    """Decoder blocks."""
    num_attention_heads: int = 4
    """Attention heads (no grouped KV: the model is small enough)."""
    intermediate_size: int = 688
    """SwiGLU width (about 8/3 x hidden, as in Llama)."""
    max_position_embeddings: int = 1024
    """Longest sequence; also the tokenizer's model_max_length."""
    tie_word_embeddings: bool = True
    """Share input and output embeddings: a quarter of the parameters saved at this size."""
    seed: int = 1234
    """Seed of the random initialisation, fixed so every machine builds the same weights."""


SPEC = DemoModelSpec()


def train_tokenizer(texts: Iterable[str], spec: DemoModelSpec = SPEC):
    """Byte-level BPE (any text encodes, decoding round-trips) wrapped as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Untrimmed offsets cover every character, so char-span label masks line up with tokens.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=2,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=spec.max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def init_model(tokenizer, spec: DemoModelSpec = SPEC):
    """A randomly initialised LlamaForCausalLM; the global RNG state is left untouched."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def build_into(target: Path, texts: Iterator[str], spec: DemoModelSpec = SPEC) -> None:
    """Write tokenizer, model and marker into an (empty) directory; the marker goes last."""
    tokenizer = train_tokenizer(texts, spec)
    model = init_model(tokenizer, spec)
    with quiet_progress():
        tokenizer.save_pretrained(target)
        model.save_pretrained(target)
    if not paths.has_model_files(target):  # e.g. saved on a torch.distributed rank other than 0
        raise RuntimeError(f"building the demo model wrote no weights into {target}; build it outside torch.distributed")
    marker = {"format": BUILD_FORMAT, "spec": asdict(spec), "parameters": model.num_parameters()}
    (target / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide transformers' one-shard "Writing model shards" bar, which would garble the demo's output."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def is_current_build(directory: Path) -> bool:
    try:
        marker = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    current = isinstance(marker, dict) and marker.get("format") == BUILD_FORMAT and marker.get("spec") == asdict(SPEC)
    return current and paths.has_model_files(directory)
