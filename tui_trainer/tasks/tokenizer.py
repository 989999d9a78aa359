"""Tokenizer loading and the model limits that preparation must respect, shared by the token-based tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ConfigError, ModelError


def load_tokenizer(cfg: RunConfig, path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot load a tokenizer from {path}: {err}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"model.name_or_path: {path} has no fast tokenizer (tokenizer.json); tui-trainer needs one")
    # Packing separates documents with EOS and collation pads; encoder-style tokenizers
    # (BERT's [SEP]/[PAD]) have no EOS, so fall back to the separator.
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token is None:
        raise ModelError(f"model.name_or_path: the tokenizer of {path} has no eos, sep or pad token to end documents")
    return tokenizer


def position_limit(cfg: RunConfig, path: str) -> int | None:
    """The model's ``max_position_embeddings`` from its config.json (None when it has none or no config)."""
    if Path(path).is_dir() and not (Path(path) / "config.json").is_file():
        return None  # a tokenizer-only directory (``tui-trainer prepare``)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot read the model config of {path}: {err}") from None
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


def check_seq_len(cfg: RunConfig, path: str) -> None:
    """data.max_seq_len past the model's position limit would fail (or silently extrapolate) mid-run: refuse it."""
    limit = position_limit(cfg, path)
    if limit is not None and cfg.data.max_seq_len > limit:
        raise ConfigError(
            f"data.max_seq_len = {cfg.data.max_seq_len} is longer than model {cfg.model.name_or_path!r} supports "
            f"(max_position_embeddings = {limit}); set data.max_seq_len to at most {limit}"
        )
