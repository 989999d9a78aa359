"""The core never imports Textual (DESIGN §2): every module outside tui_trainer.ui, imported in a clean subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The walk runs in the subprocess too: walk_packages imports each package to find its
# children, and those imports must not bring Textual in either. Files the walk cannot see
# (a folder without __init__.py is a namespace package to it) are imported by name after it.
_CODE = """
import importlib, json, pkgutil, sys
import tui_trainer
files = json.loads(sys.argv[1])

def core(name):
    return not (name == "tui_trainer.ui" or name.startswith("tui_trainer.ui.") or name.rsplit(".", 1)[-1] == "__main__")

failed = []
names = []
for info in pkgutil.walk_packages(tui_trainer.__path__, "tui_trainer.", onerror=failed.append):
    if not core(info.name):
        continue
    importlib.import_module(info.name)
    names.append(info.name)
for name in files:
    if name not in names:
        importlib.import_module(name)
        names.append(name)
textual = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(json.dumps({"imported": names, "textual": textual, "walk_errors": failed}))
"""


def _core_files() -> list[str]:
    names = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "tui_trainer").rglob("*.py")
        if p.relative_to(ROOT / "tui_trainer").parts[0] != "ui" and p.stem != "__main__"
    }
    return sorted(names - {"tui_trainer"})


def test_every_core_module_imports_without_textual():
    files = _core_files()
    result = subprocess.run(
        [sys.executable, "-c", _CODE, json.dumps(files)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["walk_errors"], report["walk_errors"]
    assert report["textual"] == [], f"the core imported {report['textual'][:5]}..."
    assert set(report["imported"]) == set(files)
    assert len(files) > 50  # the walk found the package, not an empty stand-in
