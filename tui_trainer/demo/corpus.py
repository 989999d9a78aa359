"""The embedded demo corpora, extracted from the running Python's standard library.

Every machine that runs tui-trainer has these files, so the demo needs no download.
The selection is a pure function of the stdlib tree (sorted paths, fixed caps), so a
given Python version always yields the same corpus.
"""

from __future__ import annotations

import ast
import json
import os
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CODE_CAP_BYTES = 3_000_000
"""Total UTF-8 size of demo:python-code; enough text for the demo, small enough to set up in seconds."""

DOCS_CAP_BYTES = 2_000_000
"""Total UTF-8 size of demo:python-docs."""

MAX_FILE_BYTES = 150_000
"""Larger stdlib files are generated tables or outliers (pydoc topics, _pydecimal) that would dominate."""

_SKIPPED_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "lib-dynload",
        # Generated code: charmap tables and the pydoc topic dump would teach the model little.
        "encodings",
        "pydoc_data",
    }
)


@dataclass(frozen=True)
class CorpusSpec:
    """One embedded corpus: how to produce its documents."""

    name: str
    """The ``demo:`` name users write in a config."""
    file_stem: str
    """File name (without ``.jsonl``) under ``demo_dir()/corpora``."""
    cap_bytes: int
    """Upper bound on the summed UTF-8 size of the documents' text."""
    description: str
    """One line for help texts and error messages."""
    documents: Callable[[], Iterator[str]]
    """Produces the documents, uncapped."""


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _is_generated(rel: Path) -> bool:
    return rel.name.startswith("_sysconfigdata") or rel.parts[0].startswith("config-")


def stdlib_sources() -> Iterator[tuple[str, str]]:
    """(relative path, text) of the eligible stdlib ``.py`` files in sorted path order."""
    root = stdlib_root()
    candidates: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Pruning in place keeps os.walk out of test trees and site-packages entirely.
        dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith(".")]
        for fname in filenames:
            if not fname.endswith(".py"):
                continue
            path = Path(dirpath) / fname
            rel = path.relative_to(root)
            if _is_generated(rel):
                continue
            candidates.append((rel.as_posix(), path))
    candidates.sort()
    for rel_name, path in candidates:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            # A stdlib file in another encoding or unreadable is simply not part of the demo.
            continue
        if text.strip():
            yield rel_name, text


def code_documents() -> Iterator[str]:
    """Whole source files, each headed by its path as a comment so the text stays valid Python."""
    for rel_name, text in stdlib_sources():
        yield f"# {rel_name}\n{text}"


_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def docs_documents() -> Iterator[str]:
    """Module, class and function docstrings (cleaned of indentation), one document each."""
    for _rel_name, text in stdlib_sources():
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, _DOC_NODES):
                doc = ast.get_docstring(node, clean=True)
                if doc and doc.strip():
                    yield doc.strip()


CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in (
        CorpusSpec("demo:python-code", "python-code", CODE_CAP_BYTES, "Python standard-library source files", code_documents),
        CorpusSpec("demo:python-docs", "python-docs", DOCS_CAP_BYTES, "docstrings of the standard library", docs_documents),
    )
}


def capped(documents: Iterator[str], cap_bytes: int) -> list[str]:
    """The documents in order up to (not including) the first one that would pass ``cap_bytes``."""
    kept: list[str] = []
    total = 0
    for doc in documents:
        size = len(doc.encode("utf-8"))
        if total + size > cap_bytes:
            break
        kept.append(doc)
        total += size
    return kept


def build_documents(spec: CorpusSpec) -> list[str]:
    return capped(spec.documents(), spec.cap_bytes)


def write_jsonl_atomic(path: Path, documents: list[str]) -> None:
    """Write one ``{"text": ...}`` per line to a temp file in the same dir, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for doc in documents:
                fh.write(json.dumps({"text": doc}, ensure_ascii=False))
                fh.write("\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
