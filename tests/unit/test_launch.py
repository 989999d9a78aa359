"""runs/launch: the torchrun command line, --nproc checks and rank 0's exit code read back."""

from __future__ import annotations

import json

import pytest

from tui_trainer.errors import ConfigError
from tui_trainer.runs.launch import Distributed, check_nproc, exit_code_of, torchrun_argv


def test_one_machine_picks_a_free_local_port():
    argv = torchrun_argv(Distributed(2), ["train", "x.toml"], "run")
    assert "--rdzv-endpoint=localhost:0" in argv and "--nproc-per-node=2" in argv
    assert argv[-4:] == ["-m", "tui_trainer", "train", "x.toml"]


def test_several_machines_pass_through_and_need_an_endpoint():
    argv = torchrun_argv(Distributed(8, "2", 1, "10.0.0.1:29500"), ["train", "x.toml"], "run")
    assert {"--nnodes=2", "--node-rank=1", "--rdzv-endpoint=10.0.0.1:29500"} <= set(argv)
    with pytest.raises(ConfigError, match="rdzv-endpoint"):
        torchrun_argv(Distributed(8, "2"), ["train"], "run")


def test_nproc_zero_and_more_than_the_visible_gpus_are_refused(monkeypatch):
    with pytest.raises(ConfigError, match="--nproc 0"):
        check_nproc(0)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_nproc(2)
    with pytest.raises(ConfigError, match="only 2 GPU"):
        check_nproc(3)


@pytest.mark.parametrize(
    ("last", "code"),
    [
        ({"type": "run_finished"}, 0),
        ({"type": "run_stopped", "checkpoint": "c"}, 75),
        ({"type": "run_failed", "error": "DataError: no such file"}, 2),
        ({"type": "run_failed", "error": "RuntimeError: boom"}, 1),
    ],
)
def test_exit_code_is_rank_0s(tmp_path, last, code):
    lines = [{"type": "run_started"}, {"type": "step"}, last]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(item) + "\n" for item in lines))
    assert exit_code_of(tmp_path, fallback=1) == code


def test_exit_code_without_an_ending_is_the_launchers(tmp_path):
    assert exit_code_of(tmp_path, fallback=137) == 137


def _cfg_file(tmp_path, **train):
    from tests.integration.conftest import demo_cfg, write_cfg

    return str(write_cfg(demo_cfg(tmp_path, **train), tmp_path / "run.toml"))


def test_nproc_above_the_visible_gpus_is_exit_2_from_the_cli_before_anything_starts(monkeypatch, tmp_path, capsys):
    import torch

    from tui_trainer.cli.main import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert main(["train", _cfg_file(tmp_path), "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert "--nproc 2" in err and "only 1 GPU" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_fsdp_on_cpu_processes_is_exit_2_naming_train_distributed(monkeypatch, tmp_path, capsys):
    import torch

    from tui_trainer.cli.main import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", _cfg_file(tmp_path, distributed="fsdp"), "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert "train.distributed" in err and '"ddp"' in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_batch_that_does_not_split_over_the_processes_is_exit_2_before_torchrun(tmp_path, capsys):
    from tui_trainer.cli.main import main

    assert main(["train", _cfg_file(tmp_path), "--nproc", "3"]) == 2  # effective batch 4 x 2 = 8
    err = capsys.readouterr().err
    assert "not divisible by 3 processes" in err and "grad_accum" in err
    assert not (tmp_path / "runs").exists()


def test_every_rank_checks_the_world_and_one_process_trains_unsharded(monkeypatch, tmp_path):
    import os

    from tests.integration.conftest import demo_cfg
    from tui_trainer.engine import accelerators

    fsdp = demo_cfg(tmp_path, distributed="fsdp")
    with pytest.raises(ConfigError, match="train.distributed"):
        accelerators.check_world(fsdp, 2, cuda=False)
    accelerators.check_world(fsdp, 2, cuda=True)
    accelerators.check_world(fsdp, 1, cuda=False)  # one process: nothing to shard
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.delenv(accelerators.FSDP_ENV, raising=False)
    acc = accelerators.new_accelerator("no", "fsdp")
    assert acc.distributed_type.value == "NO" and accelerators.FSDP_ENV not in os.environ


def test_fsdp_plugin_is_fsdp2_wrapping_decoder_layers():
    from tui_trainer.engine.accelerators import fsdp_plugin

    plugin = fsdp_plugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"  # per decoder layer, from _no_split_modules
