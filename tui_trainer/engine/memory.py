"""Give GPU memory back, however a run ends."""

from __future__ import annotations

import gc

import torch


def cuda_allocated() -> int:
    return int(torch.cuda.memory_allocated()) if torch.cuda.is_available() else 0


def release_cuda_cache() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    # Some kernels (cuBLAS, NCCL) report OOM as a RuntimeError with this text.
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()
