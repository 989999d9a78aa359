"""The Arrow cache of prepared datasets: fingerprints, entry directories, atomic installation.

An entry is keyed by everything that changes its rows: the source's content (or size and
mtime for big files and directories), the tokenizer, the field mapping, max_seq_len,
packing, eval_fraction, the seed and :data:`FORMAT_VERSION`. Entries are built in a
private temporary directory and renamed into place, so concurrent preparations of the
same dataset never see each other's half-written files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tui_trainer import paths
from tui_trainer.config.schema import DataSection, DatasetSpec
from tui_trainer.data.sources import ResolvedSource

FORMAT_VERSION = 4
"""Bump when tokenization, packing or the entry layout changes: old entries then miss.
3: rows carry position_ids (restarting at each document) and n_targets.
4: a chat turn's labels end at its end token (ChatML's newline after <|im_end|> is not learned)."""
CONTENT_HASH_LIMIT = 64 << 20
"""Files up to this size are fingerprinted by content; bigger ones by size and mtime."""
META = "meta.json"
TRAIN_FILE, EVAL_FILE = "train.arrow", "eval.arrow"
_STALE_TMP_SECONDS = 24 * 3600


def _file_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stat_fingerprint(path: Path, root: Path | None = None) -> list[Any]:
    st = path.stat()
    name = str(path.relative_to(root)) if root else path.suffix.lower()
    return [name, st.st_size, st.st_mtime_ns]


def source_fingerprint(source: ResolvedSource) -> dict[str, Any]:
    """What identifies the source's content without reading all of it when it is big."""
    if source.kind == "hub":
        return {"kind": "hub", "id": source.path}
    if source.kind in ("file", "demo"):
        path = Path(source.path)
        if path.stat().st_size <= CONTENT_HASH_LIMIT:
            return {"kind": "file", "ext": path.suffix.lower(), "sha256": _file_hash(path)}
        return {"kind": "file", "stat": _stat_fingerprint(path)}
    root = Path(source.path)
    files = source.files or tuple(sorted(p for p in root.rglob("*") if p.is_file()))
    return {"kind": source.kind, "files": [_stat_fingerprint(p, root) for p in files]}


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the vocabulary, merges, normalizer, special tokens and chat template."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    template = getattr(tokenizer, "chat_template", None)
    h.update(json.dumps(template, sort_keys=True, default=str).encode())
    specials = {a: getattr(tokenizer, a, None) for a in ("bos_token_id", "eos_token_id", "pad_token_id")}
    h.update(json.dumps(specials, sort_keys=True).encode())
    return h.hexdigest()


def cache_key(source: ResolvedSource, spec: DatasetSpec, data: DataSection, tokenizer: Any, seed: int) -> str:
    parts = {
        "version": FORMAT_VERSION,
        "source": source_fingerprint(source),
        "fields": [spec.text_field, spec.prompt_field, spec.completion_field, spec.messages_field],
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_seq_len": data.max_seq_len,
        "packing": data.packing,
        "eval_fraction": data.eval_fraction,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def entry_dir(root: Path, name: str, key: str) -> Path:
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "dataset"
    return root / f"{safe}-{key[:20]}"


def read_entry(entry: Path, key: str) -> dict[str, Any] | None:
    """The entry's metadata when it is complete and was built for ``key``, else None."""
    try:
        meta = json.loads((entry / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    complete = (entry / TRAIN_FILE).is_file() and (entry / EVAL_FILE).is_file()
    if meta.get("key") != key or meta.get("version") != FORMAT_VERSION or not complete:
        return None
    return meta


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


def _install(tmp: Path, entry: Path, key: str) -> None:
    # A valid entry in the way was prepared by another process from the same inputs: same rows.
    aside = entry.with_name(f".old-{entry.name}-{os.getpid()}")
    paths.install_dir(tmp, entry, lambda p: read_entry(p, key) is not None, aside)


def _remove_stale(root: Path) -> None:
    """Temp dirs left by killed preparations; a day old is long past any live build."""
    paths.remove_older_than(root, ".tmp-*", _STALE_TMP_SECONDS)


@contextlib.contextmanager
def building(entry: Path, key: str) -> Iterator[Path]:
    """A private directory to build ``entry`` in; renamed into place when the block succeeds."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(entry.parent)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".tmp-{entry.name}-"))
    try:
        yield tmp
        _install(tmp, entry, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
