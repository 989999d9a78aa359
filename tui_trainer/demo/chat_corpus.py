"""``demo:python-chat``: chat records built from the running Python's standard library.

A user asks what a function does and the assistant answers with the first sentence of its
docstring. Every machine has these docstrings, so a real chat model can be fine-tuned
with no download. A fixed share of the functions is held out of the file altogether;
the demo asks the model about those before and after training, so its sample answers
are about functions it has never been trained on.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CORPUS_NAME = "demo:python-chat"
"""The ``demo:`` name of the corpus in a config's ``data.datasets[].path``."""

CORPUS_FORMAT = 1
"""Part of the cached file's name: bumped whenever the recipe below changes, so no stale file is reused."""

MODULES = (
    "base64", "bisect", "calendar", "colorsys", "copy", "csv", "difflib", "filecmp", "fnmatch",
    "fractions", "ftplib", "functools", "getpass", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html", "imaplib", "inspect", "ipaddress", "json", "keyword", "linecache", "locale", "mimetypes",
    "ntpath", "operator", "os", "os.path", "pathlib", "pickle", "pkgutil", "platform", "plistlib",
    "posixpath", "pprint", "quopri", "random", "re", "shlex", "shutil", "smtplib", "socket",
    "statistics", "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "tokenize", "traceback", "types", "typing", "urllib.parse", "uuid", "warnings", "weakref",
    "zipfile", "zlib",
)
"""Modules whose public functions are asked about: everyday ones, importable without side effects."""

HELD_OUT_BUCKETS = 20
"""One function in this many (by a hash of its name) is kept out of the corpus file."""

MIN_ANSWER_CHARS, MAX_ANSWER_CHARS = 20, 240
"""Shorter summaries say nothing; longer ones would blow the demo's short sequences."""

QUESTION_TEMPLATES = (
    "What does `{name}` do?",
    "In Python, what is `{name}` for?",
    "Explain briefly what the function `{name}` does.",
    "What is the purpose of `{name}{signature}`?",
)
"""Phrasings rotated by a hash of the name, so the model learns the task and not one sentence."""


@dataclass(frozen=True)
class FunctionDoc:
    """One stdlib function and the answer the demo teaches for it."""

    name: str
    """Dotted name as a user writes it, e.g. ``json.dumps``."""
    signature: str
    """``(obj, *, skipkeys=False, ...)``, or empty when inspect cannot tell."""
    summary: str
    """First sentence of the docstring, on one line."""


def _bucket(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big") % HELD_OUT_BUCKETS


def is_held_out(name: str) -> bool:
    return _bucket(name) == 0


def first_sentence(doc: str) -> str | None:
    """The docstring's first sentence on one line; None when it does not start with prose."""
    paragraph = doc.strip().split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in paragraph.splitlines())
    # C functions start with their signature ("dumps(obj) -> str"): no prose to learn from.
    if not text or not text[0].isalpha() or re.match(r"^[\w.]+\(", text):
        return None
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    if not (MIN_ANSWER_CHARS <= len(sentence) <= MAX_ANSWER_CHARS):
        return None
    return sentence


def _signature(obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    # Defaults like <object object at 0x7f...> would make the corpus differ from run to run.
    return "" if " at 0x" in sig or len(sig) > 80 else sig


def stdlib_functions() -> Iterator[FunctionDoc]:
    """Public functions of :data:`MODULES` with a prose docstring, in a fixed order."""
    seen: set[str] = set()
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a platform module missing here (e.g. on Windows) is simply skipped
            continue
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            name = f"{module_name}.{attr}"
            if id(obj) in seen and inspect.isfunction(obj):
                continue  # re-exports (os.path and posixpath) would ask the same thing twice
            seen.add(id(obj))
            summary = first_sentence(inspect.getdoc(obj) or "")
            if summary:
                yield FunctionDoc(name, _signature(obj), summary)


def question(fn: FunctionDoc) -> str:
    template = QUESTION_TEMPLATES[_bucket(fn.name + "?") % len(QUESTION_TEMPLATES)]
    return template.format(name=fn.name, signature=fn.signature)


def record(fn: FunctionDoc) -> dict:
    return {"messages": [{"role": "user", "content": question(fn)}, {"role": "assistant", "content": fn.summary}]}


def training_functions() -> list[FunctionDoc]:
    return [fn for fn in stdlib_functions() if not is_held_out(fn.name)]


def held_out_functions() -> list[FunctionDoc]:
    return [fn for fn in stdlib_functions() if is_held_out(fn.name)]


SAMPLE_PICKS = ("heapq.heapify", "calendar.leapdays", "inspect.getfullargspec")
"""Held-out functions (by their hash) whose answers read well in the demo's before/after samples."""


def sample_functions(count: int = 3) -> list[FunctionDoc]:
    """``count`` held-out functions for sample generations: the picks, then others where a pick is missing."""
    held = held_out_functions()
    by_name = {fn.name: fn for fn in held}
    chosen = [by_name[name] for name in SAMPLE_PICKS if name in by_name]
    chosen += [fn for fn in held if fn not in chosen]
    return chosen[:count]


def write_records_atomic(path: Path, records: list[dict]) -> None:
    """One JSON object per line, to a temp file in the same dir renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False))
                fh.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
