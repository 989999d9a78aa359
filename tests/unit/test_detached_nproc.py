"""``--detach --nproc N`` (the CLI's and the wizard's): the detached trainer's torchrun trains in the
run directory its launcher printed, not in a second one it makes itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui_trainer.config.io import save_config
from tui_trainer.config.schema import config_from_dict
from tui_trainer.engine.checkpoint.rundir import RUN_DIR_ENV


def test_the_detached_child_trains_in_the_planned_run_directory(tmp_path: Path, monkeypatch) -> None:
    import tui_trainer.runs.launch as launch
    from tui_trainer.cli.train import cmd_train

    out = tmp_path / "runs"
    config = tmp_path / "run.toml"
    save_config(config_from_dict({"run": {"name": "r", "output_dir": str(out)}}), config)
    planned = out / "r-20260101-000000"
    planned.mkdir(parents=True)
    seen = []
    monkeypatch.setattr(launch, "check_nproc", lambda n: None)
    monkeypatch.setattr(launch, "run_torchrun", lambda dist, argv, run_dir, run_id: seen.append(run_dir) or 0)
    monkeypatch.setenv(RUN_DIR_ENV, str(planned))  # what start_detached gives the detached `train --nproc N`
    args = argparse.Namespace(
        file=config, set=[], resume=None, max_steps=None, merge=False,
        detach=False, nproc=2, nnodes=None, node_rank=None, rdzv_endpoint=None,
    )  # fmt: skip
    assert cmd_train(args, run_here=lambda *a, **k: 1) == 0
    assert seen == [planned] and sorted(p.name for p in out.iterdir()) == [planned.name]
