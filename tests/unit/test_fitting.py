"""Fitting presets to hardware: exact effective batches, 4-bit and checkpointing only when needed,
valid configs, and refusals that say what to change."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tui_trainer.config.schema import config_from_dict

from tui_trainer.config.io import dumps_config, loads_config
from tui_trainer.errors import ConfigError
from tui_trainer.planning.fitting import fit, fit_preset
from tui_trainer.planning.hardware import GIB, Hardware, simulated_gpu
from tui_trainer.planning.memory_estimate import estimate_memory
from tui_trainer.planning.presets import LEVELS, get_preset, load_presets

CPU_64 = Hardware(kind="cpu", name="test CPU", total_bytes=64 * GIB, free_bytes=64 * GIB, bf16=False,
                  compute_capability=None, gpu_count=0, simulated=True, cpu_cores=16, ram_bytes=64 * GIB)  # fmt: skip
HARDWARE = {"8GB": simulated_gpu(8), "24GB": simulated_gpu(24), "80GB": simulated_gpu(80), "cpu": CPU_64}
FAMILIES = sorted(load_presets())
SEVEN_B = ("qwen2.5-7b", "mistral-7b")


@pytest.fixture(autouse=True)
def _no_user_presets(monkeypatch, tmp_path):
    monkeypatch.setenv("TUI_TRAINER_CONFIG_HOME", str(tmp_path / "config-home"))


@pytest.mark.parametrize("hw_name", list(HARDWARE))
@pytest.mark.parametrize("family", FAMILIES)
def test_resolution_table(family, hw_name):
    """Every family x level x hardware either fits with micro-batch x accumulation = the target, or is refused."""
    hw = HARDWARE[hw_name]
    for level in LEVELS:
        target = get_preset(family).levels[level].for_size("medium").effective_batch
        try:
            result = fit_preset(family, level, hw)
        except ConfigError as err:
            assert hw_name == "8GB", f"{family} {level} must fit on {hw_name}: {err}"
            assert "Cheapest change:" in str(err)
            continue
        train = result.config.train
        assert train.micro_batch_size * train.grad_accum == target, (family, level, hw_name)
        assert result.estimate.total <= hw.free_bytes
        assert result.estimate.shape.micro_batch == train.micro_batch_size
        assert result.size_class == "medium"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in SEVEN_B])
def test_small_models_fit_8gb_at_highspeed(family):
    result = fit_preset(family, "highspeed", HARDWARE["8GB"])
    assert result.estimate.total <= 8 * GIB


@pytest.mark.parametrize("family", SEVEN_B)
@pytest.mark.parametrize("level", LEVELS)
def test_7b_turns_4bit_on_at_24gb_and_not_at_80gb(family, level):
    at_24 = fit_preset(family, level, HARDWARE["24GB"])
    at_80 = fit_preset(family, level, HARDWARE["80GB"])
    assert at_24.config.model.load_in_4bit and at_24.estimate.shape.load_in_4bit
    assert any("4-bit" in note for note in at_24.notes)
    assert not at_80.config.model.load_in_4bit
    assert at_80.config.model.dtype == "bfloat16"


def test_4bit_never_on_cpu_or_for_full_training():
    for level in LEVELS:
        assert not fit_preset("qwen2.5-7b", level, CPU_64).config.model.load_in_4bit
        demo = fit_preset("demo-tiny", level, HARDWARE["8GB"])
        assert not demo.config.model.load_in_4bit and not demo.config.lora.enabled


def test_checkpointing_only_when_nothing_fits_without_it():
    hw = HARDWARE["24GB"]
    for family in FAMILIES:
        for level in LEVELS:
            result = fit_preset(family, level, hw)
            shape = result.estimate.shape
            without = dataclasses.replace(shape, micro_batch=1, grad_accum=shape.micro_batch * shape.grad_accum,
                                          gradient_checkpointing=False)  # fmt: skip
            fits_without = estimate_memory(get_preset(family).facts, without).total <= hw.free_bytes
            assert result.config.train.gradient_checkpointing == (not fits_without), (family, level)


def test_refusal_gives_the_estimate_and_a_change_that_works():
    six = simulated_gpu(6)  # 8 GB fits since the loss is chunked
    with pytest.raises(ConfigError) as info:
        fit_preset("llama-3.2-3b", "quality", six)
    message = str(info.value)
    assert "does not fit on" in message and "6.0 GB" in message
    assert "logits and loss" in message and "total" in message  # the breakdown
    match = re.search(r"Cheapest change: set data\.max_seq_len = (\d+)", message)
    assert match, message
    seq = int(match.group(1))
    preset = get_preset("llama-3.2-3b")
    level = dataclasses.replace(preset.levels["quality"], max_seq_len=seq)
    shorter = dataclasses.replace(preset, levels={**preset.levels, "quality": level})
    assert fit(shorter, "quality", six).config.data.max_seq_len == seq


def test_refusal_suggests_a_bigger_card_when_shorter_rows_cannot_help():
    with pytest.raises(ConfigError) as info:
        fit_preset("qwen2.5-7b", "highspeed", HARDWARE["8GB"])
    message = str(info.value)
    need = int(re.search(r"use a GPU with at least (\d+) GB", message).group(1))
    assert fit_preset("qwen2.5-7b", "highspeed", simulated_gpu(need)).config.model.load_in_4bit
    assert "smaller model such as" in message


def test_real_gpu_without_bitsandbytes_suggests_installing_it(monkeypatch):
    monkeypatch.setattr("tui_trainer.planning.fitting.importlib.util.find_spec", lambda name: None)
    card = Hardware(kind="cuda", name="RTX 4080", total_bytes=16 * GIB, free_bytes=16 * GIB, bf16=True,
                    compute_capability=(8, 9), gpu_count=1, simulated=False)  # fmt: skip
    with pytest.raises(ConfigError, match=r"Cheapest change: install bitsandbytes"):
        fit_preset("mistral-7b", "highspeed", card)


def test_every_preset_resolves_to_a_valid_config_that_round_trips():
    for family in FAMILIES:
        preset = get_preset(family)
        for level in LEVELS:
            cfg = fit_preset(family, level, HARDWARE["80GB"]).config
            assert loads_config(dumps_config(cfg)) == cfg
            assert config_from_dict(cfg.to_dict()) == cfg
            settings = preset.levels[level]
            assert cfg.model.name_or_path == preset.facts.hub_id
            assert cfg.lora.enabled == preset.lora_enabled
            assert (cfg.train.lr, cfg.train.epochs, cfg.data.max_seq_len) == (settings.lr, settings.epochs, settings.max_seq_len)
            assert cfg.train.max_steps == 0
            if preset.lora_enabled:
                assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (settings.lora_r, settings.lora_alpha, settings.lora_dropout)
                assert cfg.lora.target_modules == list(preset.target_modules)
    assert fit_preset("demo-tiny", "highspeed", CPU_64).config.model.name_or_path == "demo:tiny-llama"


def test_precision_follows_the_hardware():
    bf16 = fit_preset("qwen2.5-0.5b", "quality", HARDWARE["24GB"]).config
    assert (bf16.train.precision, bf16.train.tf32, bf16.model.dtype) == ("bf16", True, "bfloat16")
    old_card = simulated_gpu(16, bf16=False)
    fp16 = fit_preset("qwen2.5-0.5b", "quality", old_card).config
    assert (fp16.train.precision, fp16.train.tf32, fp16.model.dtype) == ("fp16", False, "float16")
    cpu = fit_preset("qwen2.5-0.5b", "quality", CPU_64).config
    assert (cpu.train.precision, cpu.train.tf32, cpu.model.dtype) == ("fp32", False, "float32")
    full = fit_preset("demo-tiny", "quality", HARDWARE["24GB"]).config
    assert (full.train.precision, full.model.dtype) == ("bf16", "float32")  # fp32 master weights


def test_data_size_picks_the_adjustments():
    preset = get_preset("tinyllama-1.1b")
    small = fit_preset("tinyllama-1.1b", "quality", HARDWARE["80GB"], data_tokens=200_000)
    large = fit_preset("tinyllama-1.1b", "quality", HARDWARE["80GB"], data_tokens=500_000_000)
    expected_small = preset.levels["quality"].for_size("small")
    assert small.size_class == "small" and large.size_class == "large"
    assert (small.config.train.epochs, small.config.train.lr) == (expected_small.epochs, expected_small.lr)
    assert small.config.effective_batch == expected_small.effective_batch
    assert large.config.effective_batch == preset.levels["quality"].for_size("large").effective_batch
    # 200k tokens / 2048 per row = 98 rows; 3 epochs at batch 16 -> 19 steps, evaluated every step or so
    assert small.config.train.eval_every == 1
    assert any("very few steps" in note for note in small.notes)


def test_base_config_keeps_the_users_run_and_data():
    base = config_from_dict({
        "run": {"name": "mine", "output_dir": "/tmp/out", "seed": 7},
        "data": {"strategy": "uniform", "packing": False, "datasets": [{"name": "a", "path": "a.jsonl"}]},
        "checkpoint": {"every_steps": 5, "keep_last": 1},
        "train": {"early_stopping_patience": 3, "micro_batch_size": 1, "grad_accum": 1},
    })  # fmt: skip
    cfg = fit_preset("qwen2.5-1.5b", "highspeed", HARDWARE["24GB"], base=base).config
    assert cfg.run == base.run and cfg.checkpoint == base.checkpoint
    assert cfg.data.datasets == base.data.datasets
    assert (cfg.data.strategy, cfg.data.packing) == ("uniform", False)
    assert cfg.data.max_seq_len == get_preset("qwen2.5-1.5b").levels["highspeed"].max_seq_len
    assert cfg.train.early_stopping_patience == 3
    assert cfg.effective_batch == get_preset("qwen2.5-1.5b").levels["highspeed"].effective_batch
    assert cfg.model.name_or_path == "Qwen/Qwen2.5-1.5B-Instruct"
    assert fit_preset("qwen2.5-1.5b", "highspeed", HARDWARE["24GB"]).config.run.name == "qwen2.5-1.5b-highspeed"


def test_sequence_length_is_capped_by_the_model():
    preset = get_preset("phi-3-mini")
    facts = dataclasses.replace(preset.facts, max_position_embeddings=1024)
    result = fit(dataclasses.replace(preset, facts=facts), "bestaccuracy", HARDWARE["80GB"])
    assert result.config.data.max_seq_len == 1024
    assert any("capped" in note for note in result.notes)


def test_several_gpus_split_the_batch_evenly():
    two = dataclasses.replace(simulated_gpu(24), gpu_count=2)
    cfg = fit_preset("qwen2.5-0.5b", "quality", two).config
    assert cfg.effective_batch == 32
    assert (cfg.effective_batch // 2) % cfg.train.micro_batch_size == 0


def test_unknown_level_or_preset():
    with pytest.raises(ConfigError, match="unknown level 'turbo'"):
        fit_preset("qwen2.5-0.5b", "turbo", HARDWARE["24GB"])
    with pytest.raises(ConfigError, match="unknown preset"):
        fit_preset("gpt-5", "quality", HARDWARE["24GB"])


# ---------------------------------------------------------------- CLI


def test_cli_fit_prints_toml_that_train_accepts(capsys, tmp_path):
    from tui_trainer.cli.main import main

    assert main(["presets", "fit", "demo-tiny", "--level", "highspeed"]) == 0
    out, err = capsys.readouterr()
    cfg = loads_config(out, "stdout")
    assert cfg.model.name_or_path == "demo:tiny-llama" and not cfg.lora.enabled
    assert [d.path for d in cfg.data.datasets] == ["demo:python-code", "demo:python-docs"]
    assert "Memory estimate" in err and "total" in err  # the breakdown stays on stderr

    data = tmp_path / "chat.jsonl"
    data.write_text('{"text": "hello"}\n' * 1000, encoding="utf-8")
    out_file = tmp_path / "run.toml"
    argv = ["presets", "fit", "qwen2.5-7b", "--level", "quality", "--vram", "24", "--dataset", str(data), "--out", str(out_file)]
    assert main(argv) == 0
    _, err = capsys.readouterr()
    cfg = loads_config(out_file.read_text(encoding="utf-8"), str(out_file))
    assert cfg.model.load_in_4bit and cfg.data.datasets[0].path == str(data)
    assert "small data" in err and "guessed from file sizes" in err


def test_cli_fit_refusal_is_exit_2(capsys):
    from tui_trainer.cli.main import main

    assert main(["presets", "fit", "qwen2.5-7b", "--level", "bestaccuracy", "--vram", "8"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Cheapest change:" in err and "Traceback" not in err
