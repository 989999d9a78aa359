"""Where tui-trainer keeps its own files (demo model, dataset cache, user presets), and how a
built directory is put there safely when several processes build the same one."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def home() -> Path:
    """Root of tui-trainer's own files; ``TUI_TRAINER_HOME`` overrides the user cache dir."""
    override = os.environ.get("TUI_TRAINER_HOME")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tui-trainer"


def cache_dir() -> Path:
    """Arrow caches of prepared datasets."""
    return home() / "datasets"


def demo_dir() -> Path:
    """The embedded demo model and corpora, built once and reused."""
    return home() / "demo"


def user_config_dir() -> Path:
    """User presets (``presets/*.toml``) that extend or override the shipped ones."""
    override = os.environ.get("TUI_TRAINER_CONFIG_HOME")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tui-trainer"


MODEL_FILES = ("config.json", "model.safetensors")
"""What a saved transformers model directory cannot be loaded without (one shard: the demo model
and the GGUF conversions are small enough for one)."""


def has_model_files(directory: Path) -> bool:
    """A marker alone does not make a model: a build whose save wrote nothing (transformers skips
    the files on a torch.distributed rank other than 0) must count as broken and be rebuilt."""
    return all((directory / name).is_file() for name in MODEL_FILES)


@contextlib.contextmanager
def build_lock(final: Path) -> Iterator[None]:
    """Hold ``final``'s build lock (a file beside it): the processes of one machine then build it
    once, one after another, instead of every torchrun rank converting its own copy at once (a
    GGUF conversion is a minute and a model's worth of memory). The kernel drops it with the process."""
    import fcntl

    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(f".{final.name}.lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def install_dir(tmp: Path, final: Path, is_valid: Callable[[Path], bool], aside: Path) -> None:
    """Rename the finished build ``tmp`` to ``final``. When ``final`` already exists and
    ``is_valid`` accepts it, another process built the same thing first and it is kept;
    otherwise (outdated, broken) it is moved to ``aside`` and ours takes its place."""
    try:
        os.replace(tmp, final)
        return
    except OSError:
        if is_valid(final):
            return
    shutil.rmtree(aside, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.replace(final, aside)
    try:
        os.replace(tmp, final)
    except OSError:
        if not is_valid(final):  # lost a second race to a valid build: fine
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def remove_older_than(parent: Path, pattern: str, seconds: float) -> None:
    """Delete what matches ``pattern`` in ``parent`` and is older than ``seconds`` (temp
    directories of builds whose process was killed)."""
    now = time.time()
    for leftover in parent.glob(pattern):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > seconds:
                shutil.rmtree(leftover, ignore_errors=True)


def shipped_presets_dir() -> Path:
    """The presets that come with tui-trainer: inside the package when installed from a wheel,
    else the repository's top-level ``presets/`` (a source checkout)."""
    package = Path(__file__).resolve().parent
    inside = package / "presets"
    return inside if inside.is_dir() else package.parent / "presets"


def is_shipped(path: Path) -> bool:
    """Whether ``path`` is one of the presets that come with tui-trainer (not a user's own)."""
    return path.resolve().is_relative_to(shipped_presets_dir().resolve())
