"""The wizard's read of a base model's shape: from its config alone, with the sae task's own check."""

from __future__ import annotations

from pathlib import Path

from tui_trainer.config.schema import config_from_dict
from tui_trainer.ui.wizard_launch import default_processes, launches_in_process
from tui_trainer.ui.wizard_model import read_model_shape


def _model_dir(tmp_path: Path, kind: str = "llama") -> Path:
    from transformers import BertConfig, LlamaConfig

    folder = tmp_path / kind
    config = LlamaConfig(num_hidden_layers=3, hidden_size=32, intermediate_size=64, num_attention_heads=4, vocab_size=100)
    if kind == "bert":
        config = BertConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4, vocab_size=100)
        config.architectures = ["BertForSequenceClassification"]
    config.save_pretrained(folder)  # config.json only: no weights are written or read
    return folder


def _sae(path: Path, **sae) -> object:
    return config_from_dict({"run": {"task": "sae"}, "model": {"name_or_path": str(path)}, "sae": sae})


def test_layer_count_and_the_task_refusing_a_layer_past_it(tmp_path: Path) -> None:
    folder = _model_dir(tmp_path)
    fine = read_model_shape(_sae(folder, layer=2, k=16))
    assert (fine.layers, fine.width, fine.problem) == (3, 32, None)
    past = read_model_shape(_sae(folder, layer=3))
    assert past.layers == 3 and "sae.layer = 3 is beyond the model's 3 decoder layers; use 0..2" in past.problem
    too_many = read_model_shape(_sae(folder, layer=0, k=300, expansion_factor=8))
    assert "sae.k = 300 is more than d_sae = 256" in too_many.problem


def test_a_base_that_is_not_a_causal_lm_and_a_missing_model(tmp_path: Path) -> None:
    bert = read_model_shape(_sae(_model_dir(tmp_path, "bert"), layer=0))
    assert "not a causal LM" in bert.problem
    missing = read_model_shape(_sae(tmp_path / "nowhere", layer=0))
    assert missing.layers is None and "model.name_or_path" in missing.problem and "does not exist" in missing.problem


def test_default_processes_and_where_a_start_trains() -> None:
    from types import SimpleNamespace

    assert default_processes(None) == 1
    assert default_processes(SimpleNamespace(kind="cpu", gpu_count=0)) == 1
    assert default_processes(SimpleNamespace(kind="cuda", gpu_count=8)) == 8
    assert launches_in_process(False, 1) and not launches_in_process(True, 1) and not launches_in_process(False, 2)


def test_launch_refuses_what_the_processes_cannot_train_before_making_anything(tmp_path: Path) -> None:
    import pytest

    from tui_trainer.errors import ConfigError
    from tui_trainer.ui.wizard_launch import launch_run

    cfg = config_from_dict({"run": {"output_dir": str(tmp_path / "runs")}, "train": {"micro_batch_size": 8, "grad_accum": 4}})
    with pytest.raises(ConfigError, match="not divisible by 3 processes"):
        launch_run(cfg, detach=True, nproc=3)  # the same check as `tui-trainer train --nproc 3`
    with pytest.raises(ConfigError, match="--nproc 0"):
        launch_run(cfg, detach=False, nproc=0)
    assert not (tmp_path / "runs").exists()
