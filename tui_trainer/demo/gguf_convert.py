"""A ``.gguf`` checkpoint -> a plain safetensors model directory, converted once and cached.

transformers loads a GGUF file dequantized, but the model it returns refuses
``save_pretrained`` and the load takes minutes on a small CPU. So the file is converted
once: the config and tokenizer come from its metadata, the dequantized tensors are
assigned into a model built on the meta device, and the result is saved like any HF
model under ``paths.home()/gguf/<stem>-<sha256 prefix>``. Every later run loads that
directory in seconds with the ordinary Auto* classes (and plain peft can reload adapters
trained on it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from tui_trainer import paths
from tui_trainer.demo.tiny_llama import quiet_progress
from tui_trainer.errors import ModelError

CONVERT_FORMAT = 1
"""Bumped whenever the conversion recipe changes, so an older cached conversion is redone."""

MARKER_FILE = "tui_trainer_gguf.json"
"""Written last into a conversion; with the current format and the file's sha256 it marks it complete."""

ABANDONED_AFTER_S = 3 * 3600
"""A temp conversion dir this old belongs to a killed process (a conversion takes a minute or two)."""

_HASH_CHUNK = 1 << 20


def is_gguf_source(name_or_path: str, gguf_file: str | None = None) -> bool:
    """Whether a model reference names a GGUF checkpoint (a ``.gguf`` file, or a dir + ``model.gguf_file``)."""
    return bool(gguf_file) or (isinstance(name_or_path, str) and name_or_path.lower().endswith(".gguf"))


def gguf_path(name_or_path: str, gguf_file: str | None = None) -> Path:
    """The GGUF file a model reference points at; ModelError when it is not there."""
    base = Path(name_or_path).expanduser()
    if gguf_file:
        if not base.is_dir():
            raise ModelError(
                f"model.name_or_path: {name_or_path!r} is not a directory; with model.gguf_file set it must be "
                "the directory that holds the .gguf file (or drop gguf_file and give the file's own path)"
            )
        path = base / gguf_file
        where = f"model.gguf_file: {gguf_file!r} is not a file in {base}"
    else:
        path = base
        where = f"model.name_or_path: {name_or_path!r} does not exist"
    if not path.is_file():
        raise ModelError(f"{where}; give the path of a .gguf checkpoint")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def conversion_dir(source: Path, sha256: str) -> Path:
    """Keyed by content, so a copied or renamed file reuses the conversion and an edited one does not."""
    return paths.home() / "gguf" / f"{source.stem}-{sha256[:16]}"


def is_current_conversion(directory: Path, sha256: str) -> bool:
    try:
        marker = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    current = isinstance(marker, dict) and marker.get("format") == CONVERT_FORMAT and marker.get("sha256") == sha256
    return current and paths.has_model_files(directory)


def ensure_converted(source: Path) -> Path:
    """The converted model directory for ``source``, converting it first when needed.

    The conversion goes to a private temp dir renamed into place (``paths.install_dir``),
    so two processes converting at once both end with one complete directory and a reader
    never sees a half-written one.
    """
    sha256 = file_sha256(source)
    final = conversion_dir(source, sha256)
    if is_current_conversion(final, sha256):
        return final
    with paths.build_lock(final):
        if is_current_conversion(final, sha256):  # converted by the process we waited for
            return final
        paths.remove_older_than(final.parent, f".{final.name}.*", ABANDONED_AFTER_S)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            convert_into(source, tmp)
            if not paths.has_model_files(tmp):  # e.g. saved on a torch.distributed rank other than 0
                raise RuntimeError(f"converting {source} wrote no weights into {tmp}; convert it outside torch.distributed")
            marker = {"format": CONVERT_FORMAT, "sha256": sha256, "source": str(source)}
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            paths.install_dir(
                tmp,
                final,
                lambda d: is_current_conversion(d, sha256),
                final.with_name(f".{final.name}.old-{os.getpid()}"),
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def convert_into(source: Path, target: Path) -> None:
    """Config, tokenizer (with its chat template) and fp32 weights of ``source`` saved into ``target``."""
    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it; say so before a long load fails)
    except ImportError:
        raise ModelError(f"model.name_or_path: reading {source} needs the gguf package: pip install gguf") from None
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    from transformers.utils import logging as hf_logging

    folder, name = str(source.parent), source.name
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        try:
            config = AutoConfig.from_pretrained(folder, gguf_file=name)
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except (OSError, ValueError, KeyError, NotImplementedError) as err:
            raise ModelError(f"model.name_or_path: {source} is not a GGUF checkpoint transformers can read: {err}") from None
        # Building on the meta device costs nothing; the real tensors are assigned below.
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        # The loader draws a tqdm bar of its own on stderr, which would tear through the progress display.
        with contextlib.redirect_stderr(io.StringIO()):
            tensors = load_gguf_checkpoint(str(source), return_tensors=True, model_to_load=model)["tensors"]
        missing = set(model.state_dict()) - set(tensors)
        if config.tie_word_embeddings:
            missing -= {"lm_head.weight"}  # tied to the input embeddings, restored by tie_weights()
        if missing:
            raise ModelError(
                f"model.name_or_path: {source} lacks {len(missing)} weights of its architecture "
                f"(e.g. {sorted(missing)[:3]}); it cannot be trained as {config.model_type}"
            )
        model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=False, assign=True)
        # Non-persistent buffers (rotary frequencies) stay on meta: save_pretrained skips them and
        # from_pretrained recomputes them from the config.
        model.tie_weights()
        model.config.dtype = torch.float32
        with quiet_progress():
            tokenizer.save_pretrained(target)
            model.save_pretrained(target)
    finally:
        hf_logging.set_verbosity(verbosity)

