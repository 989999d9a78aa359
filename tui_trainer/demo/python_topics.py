"""``demo:python-topics``: docstrings of the standard library labeled by module family (text, offline).

The families are naturally imbalanced (the standard library documents its file and
network modules far more than its math modules), which is what a classification demo needs.
Docstrings are read with ``ast`` from the installed sources, never by importing the modules.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from tui_trainer import paths
from tui_trainer.demo.corpus import stdlib_root

BUILD_VERSION = "1"
FAMILIES = {
    "text": ("string", "re", "textwrap", "difflib", "unicodedata", "stringprep", "html", "gettext", "locale"),
    "files": ("os", "pathlib", "shutil", "glob", "fnmatch", "tempfile", "zipfile", "tarfile", "filecmp", "genericpath", "posixpath", "ntpath", "gzip", "bz2", "lzma"),
    "network": ("socket", "ssl", "http", "urllib", "email", "smtplib", "ftplib", "imaplib", "poplib", "mailbox", "xmlrpc", "socketserver", "ipaddress"),
    "concurrency": ("threading", "multiprocessing", "asyncio", "concurrent", "queue", "sched", "subprocess", "selectors"),
    "math": ("math", "statistics", "decimal", "_pydecimal", "fractions", "random", "numbers", "cmath"),
    "data": ("json", "csv", "pickle", "pickletools", "copyreg", "shelve", "dbm", "sqlite3", "plistlib", "configparser", "tomllib", "base64", "binascii", "struct"),
}
MIN_CHARS, MAX_CHARS = 40, 400


def _family(rel: Path) -> str | None:
    top = rel.parts[0].removesuffix(".py")
    return next((fam for fam, mods in FAMILIES.items() if top in mods), None)


def _docstrings(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            doc = ast.get_docstring(node)
            if doc:
                first = " ".join(doc.split("\n\n")[0].split())
                if len(first) >= MIN_CHARS:
                    found.append(first[:MAX_CHARS])
    return found


def records() -> list[dict[str, str]]:
    root = stdlib_root()
    rows, seen = [], set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in ("test", "tests", "idle_test", "site-packages") for part in rel.parts):
            continue
        family = _family(rel)
        if family is None:
            continue
        for text in _docstrings(path.read_text(encoding="utf-8", errors="replace")):
            if text not in seen:  # a docstring repeated across modules would sit in train and eval at once
                seen.add(text)
                rows.append({"text": text, "label": family})
    return rows


def topics_file() -> Path:
    """The JSONL file (``text``, ``label``), written on first use."""
    path = paths.demo_dir() / "corpora" / f"python-topics-v{BUILD_VERSION}.jsonl"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records()), encoding="utf-8")
    tmp.replace(path)
    return path
