"""``train.compile``: torch.compile on the model, or eager with a warning where it cannot work.

The module is compiled in place (``nn.Module.compile``), so the object the optimizer,
accelerate, checkpoints and the export hold is still the model itself, with its own
state-dict keys; only its forward goes through the compiled graph. A transformer is
compiled block by block, as torchtune's ``compile_model`` does: its decoder layers (the
classes in ``_no_split_modules``) share one compiled graph, so a cold compile costs one
layer's trace instead of the whole stack's; embeddings, the head and the loss stay eager.
A model without repeated blocks (an SAE) is compiled whole. Sequence lengths vary
from step to step (rows are trimmed to their longest), so shapes are marked dynamic from
the start instead of recompiling per length. Compilation itself happens lazily on the
first forward; what can be checked before that (a C++ compiler for the CPU backend, a
platform torch.compile supports) is checked here, so a box without a toolchain trains
eagerly and says so instead of failing on step 1.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

import torch


def compile_blocker(device: torch.device) -> str | None:
    """Why torch.compile cannot run here, or None when it can."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if sys.platform == "win32":
        return "torch.compile's inductor backend does not support Windows here"
    if device.type == "cpu":
        from torch._inductor import config as inductor_config

        cxx = inductor_config.cpp.cxx
        names = [c for c in (cxx if isinstance(cxx, (tuple, list)) else (cxx,)) if c]
        if not any(shutil.which(c) for c in names):
            return f"no C++ compiler found ({' or '.join(names) or 'g++'}), which inductor needs on the CPU"
    return None


def maybe_compile(enabled: bool, model: torch.nn.Module, device: torch.device, warn: Callable[[str], None]) -> bool:
    """When ``enabled``, compile ``model`` in place for training on ``device``; on a blocker call ``warn`` and stay eager."""
    if not enabled:
        return False
    blocker = compile_blocker(device)
    if blocker is not None:
        warn(f"train.compile is on but {blocker}; training eagerly (set train.compile = false to silence this)")
        return False
    blocks = repeated_blocks(model)
    for block in blocks or [model]:
        block.compile(dynamic=True)
    return True


def repeated_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's transformer blocks (instances of its ``_no_split_modules`` classes), outermost first."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    blocks: dict[str, torch.nn.Module] = {}
    for name, module in model.named_modules():
        if type(module).__name__ in names and not any(name.startswith(outer + ".") for outer in blocks):
            blocks[name] = module
    return list(blocks.values())
