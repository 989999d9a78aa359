"""A wheel install has everything a source checkout has: every shipped preset and the UI's stylesheet.

The wheel is built from a copy of the sources (so no stale ``build/`` of the checkout leaks in)
and unpacked into a fresh venv whose only other path is this venv's site-packages, for the
dependencies. Commands run from a directory outside the checkout, so nothing is found there.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = sorted(p.stem for p in (ROOT / "presets").glob("*.toml"))

pytestmark = pytest.mark.slow


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tui_trainer", "presets"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _build_wheel(src: Path, out: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check", "-w", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=180)
    (wheel,) = out.glob("tui_trainer-*.whl")
    return wheel


def _fresh_venv(where: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(purelib)
    # A plain path line: its own .pth files (the checkout's editable finder) are not run.
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(_copy_sources(tmp / "src"), tmp / "dist")
    python = _fresh_venv(tmp / "venv", wheel)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"TUI_TRAINER_HOME": str(tmp / "home"), "TUI_TRAINER_CONFIG_HOME": str(tmp / "config")}
    return python, elsewhere, env


def _run(installed: tuple[Path, Path, dict[str, str]], *args: str) -> str:
    python, cwd, env = installed
    result = subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    where = Path(_run(installed, "-c", "import tui_trainer; print(tui_trainer.__file__)").strip())
    assert installed[0].parent.parent in where.parents, where
    assert ROOT not in where.parents


def test_a_wheel_install_lists_every_shipped_preset_family(installed):
    out = _run(installed, "-m", "tui_trainer", "presets", "list")
    listed = {line.split()[0] for line in out.splitlines() if line.rstrip().endswith("shipped")}
    assert FAMILIES and listed == set(FAMILIES), out


def test_a_wheel_install_ships_the_ui_stylesheets(installed):
    code = "import pathlib, tui_trainer.paths as p; print(sorted(q.name for q in pathlib.Path(p.__file__).parent.rglob('*.tcss')))"
    shipped = _run(installed, "-c", code).strip()
    assert shipped == str(sorted(p.name for p in (ROOT / "tui_trainer").rglob("*.tcss")))
