"""One ``accelerate.Accelerator`` per run, in a process that may train several runs.

accelerate keeps its state in a process-wide singleton: a second run in the same process
(the TUI, a test session, ten SAE jobs in a row) that asks for another mixed precision
would get ``AcceleratorState has already been initialized and cannot be changed``. The
run-level state is reset before each run; the process group (``PartialState``, set up by
torchrun) is kept.
"""

from __future__ import annotations

import os

import torch

from tui_trainer.errors import ConfigError, DistributedError

FSDP_ENV = "ACCELERATE_USE_FSDP"
"""accelerate sets this process-wide when given an FSDP plugin, and reads it in every later
Accelerator: a DDP run after an FSDP one in the same process must not inherit it."""
_fsdp_env_ours = False
"""Whether FSDP_ENV was set by our plugin (then removed again), not by the user's launcher."""


def check_world(cfg, world_size: int, cuda: bool) -> None:
    """What these processes cannot train (exit 2), checked by the launcher before torchrun
    starts and by every rank before set-up: a rank's own error would reach the launcher as
    torchrun's exit 1, not 2.

    accelerate shards only across GPUs: on CPU ranks (gloo) it would ignore the FSDP plugin
    and silently train DDP. The global batch is split evenly over the ranks.
    """
    if cfg.train.distributed == "fsdp" and world_size > 1 and not cuda:
        raise ConfigError(
            'train.distributed = "fsdp": accelerate shards a model only across GPUs, and these processes '
            'have none (CPU, gloo); set train.distributed = "ddp" to train here, or run on CUDA devices'
        )
    if cfg.effective_batch % world_size:
        raise ConfigError(
            f"train.micro_batch_size x train.grad_accum = {cfg.effective_batch} is not divisible by "
            f"{world_size} processes; change grad_accum"
        )


def fsdp_plugin():
    """FSDP2 (``fully_shard``), one unit per decoder layer (the model's ``_no_split_modules``).

    FSDP2 because LoRA leaves most parameters frozen, which FSDP1 only shards with
    ``use_orig_params``; the state-dict type does not matter here: checkpoints gather the
    trainable weights themselves (engine/checkpoint/sharded.py).
    """
    from accelerate import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin(
        fsdp_version=2,
        auto_wrap_policy="transformer_based_wrap",
        reshard_after_forward=True,
        state_dict_type="FULL_STATE_DICT",
        cpu_ram_efficient_loading=False,
    )


def new_accelerator(mixed_precision: str, distributed: str = "ddp", timeout_s: int | None = None):
    """An Accelerator for this run; on CPU under torchrun it must be told ``cpu=True`` to see the world size.

    ``timeout_s`` is the process group's collective timeout (train.dist_timeout_s): while rank 0
    writes a checkpoint or the final export the other ranks wait in their next collective, and
    torch's NCCL default of 10 minutes is shorter than writing a large model's optimizer state.
    """
    from datetime import timedelta

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import InitProcessGroupKwargs

    AcceleratorState._reset_state(reset_partial_state=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    cpu_ranks = not cuda and world_size > 1
    # One process has nothing to shard: it trains as it would without the setting.
    plugin = fsdp_plugin() if distributed == "fsdp" and world_size > 1 else None
    global _fsdp_env_ours
    if plugin is None and _fsdp_env_ours:
        os.environ.pop(FSDP_ENV, None)
        _fsdp_env_ours = False
    elif plugin is not None and FSDP_ENV not in os.environ:
        _fsdp_env_ours = True
    handlers = [InitProcessGroupKwargs(timeout=timedelta(seconds=timeout_s))] if timeout_s else []
    return Accelerator(mixed_precision=mixed_precision, cpu=cpu_ranks, fsdp_plugin=plugin, kwargs_handlers=handlers)


_TIMED_OUT = ("Timed out waiting", "Watchdog caught collective operation timeout", "wait timeout after")
"""How gloo and NCCL word a collective that waited past the process group's timeout (torch 2.13)."""
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "NCCL communicator was aborted")
"""How they word a collective whose peer process exited."""


def collective_failure(err: BaseException, timeout_s: int) -> DistributedError | None:
    """``err`` as the user-facing reason a rank of a several-process run stopped, when it is a
    collective that timed out or lost its peer; None for anything else (a bug keeps its traceback)."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or not isinstance(err, RuntimeError):
        return None
    rank, text = os.environ.get("RANK", "?"), str(err)
    if any(mark in text for mark in _TIMED_OUT):
        return DistributedError(
            f"rank {rank} waited longer than train.dist_timeout_s = {timeout_s} s for the other processes. "
            "Rank 0 may still have been writing a checkpoint or preparing the data: raise train.dist_timeout_s, "
            "or prepare large datasets first with `tui-trainer prepare FILE`. Checkpoints already saved are intact "
            "(`--resume auto` continues from the newest)."
        )
    if any(mark in text for mark in _PEER_GONE):
        return DistributedError(
            f"rank {rank} stopped because another process of the run exited (its own message says why). "
            "Checkpoints already saved are intact (`--resume auto` continues from the newest)."
        )
    return None
