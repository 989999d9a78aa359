"""train.distributed = "fsdp" on two GPUs: trains, stops on a signal to the launcher with one
gathered checkpoint, resumes at the next step (under FSDP, then on one process), and its
final adapter loads with plain peft. CPU ranks cannot shard (exit 2, tests/unit/test_launch.py);
the checkpoint code itself is tested on CPU-sharded models in tests/unit/test_engine_sharded.py.
"""

from __future__ import annotations


import pytest
import torch

from tests.integration.conftest import cli, demo_cfg, run_events, sigterm_after_steps, write_cfg
from tui_trainer.engine.checkpoint.store import verify_checkpoint

pytestmark = [
    pytest.mark.slow,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices"),
]


def test_fsdp_trains_stops_with_one_checkpoint_and_resumes(tmp_path):
    cfg = demo_cfg(tmp_path, lora=True, max_steps=400, distributed="fsdp", checkpoint={"every_steps": 0, "every_minutes": 0})
    cfg_path = write_cfg(cfg, tmp_path / "run.toml")
    returncode, err = sigterm_after_steps(cfg_path, tmp_path / "runs", 3, timeout=180)
    assert returncode == 75, err[-3000:]
    [run_dir] = (tmp_path / "runs").glob("it-*")
    events = run_events(run_dir)
    assert next(e for e in events if e["type"] == "run_started")["world_size"] == 2
    [stopped] = [e for e in events if e["type"] == "run_stopped"]
    reached = stopped["step"]
    [checkpoint] = list((run_dir / "checkpoints").iterdir())
    assert checkpoint.name == f"step-{reached:08d}" and verify_checkpoint(checkpoint) is None

    resumed = cli("train", str(cfg_path), "--nproc", "2", "--resume", str(run_dir), "--max-steps", str(reached + 2), timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = run_events(run_dir)
    restart = max(i for i, e in enumerate(after) if e["type"] == "run_started")
    assert [e["step"] for e in after[restart:] if e["type"] == "step"] == [reached + 1, reached + 2]

    # The gathered checkpoint is an ordinary one: one process (no FSDP) resumes it too.
    last = sorted((run_dir / "checkpoints").iterdir())[-1]
    one = cli("train", str(cfg_path), "--resume", str(last), "--max-steps", str(reached + 3), timeout=400)
    assert one.returncode == 0, one.stderr[-3000:]

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tui_trainer.engine.model import resolve_model_path

    base = AutoModelForCausalLM.from_pretrained(resolve_model_path(cfg.model.name_or_path))
    PeftModel.from_pretrained(base, run_dir / "final")
