"""Preset files: the shipped ones are valid and true to their models, user files extend or override them,
and every mistake in a preset file is reported with the file and the key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tui_trainer.errors import ConfigError
from tui_trainer.planning.presets import (
    LEVELS,
    LevelSettings,
    get_preset,
    load_presets,
    shipped_presets_dir,
    size_class,
)

FAMILIES = {
    "demo-tiny",
    "tinyllama-1.1b",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "qwen2.5-7b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "phi-3-mini",
    "mistral-7b",
    "smollm2-135m",
}


@pytest.fixture(autouse=True)
def _no_user_presets(monkeypatch, tmp_path):
    """The developer's own ~/.config presets must not leak into these tests."""
    monkeypatch.setenv("TUI_TRAINER_CONFIG_HOME", str(tmp_path / "config-home"))


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "user-presets"
    folder.mkdir()
    return folder


def shipped_text(family: str) -> str:
    return (shipped_presets_dir() / f"{family}.toml").read_text(encoding="utf-8")


def test_every_family_is_shipped_with_all_levels():
    presets = load_presets()
    assert set(presets) == FAMILIES
    for preset in presets.values():
        assert tuple(preset.levels) == LEVELS
        assert not preset.user_defined
        assert preset.chat_template_note
        assert preset.source == shipped_presets_dir() / f"{preset.family}.toml"


def test_only_the_random_demo_model_trains_all_weights():
    presets = load_presets()
    assert not presets["demo-tiny"].lora_enabled
    assert presets["demo-tiny"].facts.hub_id == "demo:tiny-llama"
    for name, preset in presets.items():
        if name != "demo-tiny":
            assert preset.lora_enabled, name
            for level in preset.levels.values():
                assert level.lora_r and level.lora_alpha


def test_lora_targets_name_real_linear_layers():
    for preset in load_presets().values():
        shapes = preset.facts.linear_shapes()
        assert set(preset.target_modules) <= set(shapes), preset.family


def test_levels_order_from_fast_to_thorough():
    for preset in load_presets().values():
        fast, quality, best = (preset.levels[name] for name in LEVELS)
        assert fast.epochs <= quality.epochs <= best.epochs, preset.family
        assert fast.effective_batch <= quality.effective_batch <= best.effective_batch, preset.family
        assert fast.max_seq_len <= quality.max_seq_len <= best.max_seq_len, preset.family
        if preset.lora_enabled:
            assert fast.lora_r < quality.lora_r < best.lora_r, preset.family


def test_small_data_gets_more_epochs_and_a_lower_learning_rate():
    for preset in load_presets().values():
        for name, level in preset.levels.items():
            small, medium, large = (level.for_size(s) for s in ("small", "medium", "large"))
            assert small.epochs > medium.epochs, (preset.family, name)
            assert small.lr < medium.lr, (preset.family, name)
            assert large.effective_batch > medium.effective_batch, (preset.family, name)
            assert large.epochs <= medium.epochs, (preset.family, name)


def test_size_classes_by_token_count():
    assert size_class(None) == "medium"
    assert size_class(0) == "small"
    assert size_class(999_999) == "small"
    assert size_class(1_000_000) == "medium"
    assert size_class(99_999_999) == "medium"
    assert size_class(100_000_000) == "large"


def test_for_size_applies_only_what_the_adjustment_sets():
    level = LevelSettings(lr=1e-4, epochs=2.0, max_seq_len=512, effective_batch=32, lora_r=8, lora_alpha=16,
                          small={"epochs": 5.0, "lr_scale": 0.25})  # fmt: skip
    small = level.for_size("small")
    assert (small.epochs, small.lr, small.effective_batch, small.max_seq_len) == (5.0, 2.5e-5, 32, 512)
    assert level.for_size("large") == LevelSettings(lr=1e-4, epochs=2.0, max_seq_len=512, effective_batch=32,
                                                     lora_r=8, lora_alpha=16)  # fmt: skip
    with pytest.raises(ValueError, match="size class"):
        level.for_size("huge")


def test_demo_preset_matches_the_built_demo_model():
    demo = pytest.importorskip("tui_trainer.demo.catalog", reason="the embedded demo model module is not built yet")
    config = json.loads((demo.ensure_demo_model() / "config.json").read_text(encoding="utf-8"))
    facts = get_preset("demo-tiny").facts
    assert config["model_type"] == facts.model_type
    assert config["num_hidden_layers"] == facts.layers
    assert config["hidden_size"] == facts.hidden
    assert config["intermediate_size"] == facts.intermediate
    assert config["vocab_size"] == facts.vocab
    assert config["num_attention_heads"] == facts.heads
    assert config["num_key_value_heads"] == facts.kv_heads
    assert config["max_position_embeddings"] == facts.max_position_embeddings
    assert config["tie_word_embeddings"] == facts.tie_word_embeddings
    marker = demo.demo_model_dir() / "tui_trainer_demo.json"
    assert json.loads(marker.read_text(encoding="utf-8"))["parameters"] == facts.params


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers deprecations raised inside peft
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_facts_build_the_real_architecture(family):
    """Build each family on the meta device from its facts: parameter count and LoRA size must match."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from tui_trainer.planning.memory_estimate import lora_params

    preset = get_preset(family)
    f = preset.facts
    kwargs = dict(
        hidden_size=f.hidden, intermediate_size=f.intermediate, num_hidden_layers=f.layers,
        num_attention_heads=f.heads, num_key_value_heads=f.kv_heads, vocab_size=f.vocab,
        max_position_embeddings=f.max_position_embeddings, tie_word_embeddings=f.tie_word_embeddings, pad_token_id=0,
    )  # fmt: skip
    if f.head_dim:
        kwargs["head_dim"] = f.head_dim
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(f.model_type, **kwargs))
    assert sum(p.numel() for p in model.parameters()) == f.params
    has_qkv_bias = any(name.endswith(("q_proj.bias", "qkv_proj.bias")) for name, _ in model.named_parameters())
    assert has_qkv_bias == f.qkv_bias
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=list(preset.target_modules)))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable == lora_params(f, 8, preset.target_modules)


# ---------------------------------------------------------------- user presets


def test_user_file_overrides_only_the_keys_it_sets(user_dir):
    (user_dir / "qwen2.5-7b.toml").write_text("[levels.quality]\nlr = 3e-5\n", encoding="utf-8")
    shipped = load_presets(user_dir=user_dir / "nowhere")["qwen2.5-7b"]
    mine = load_presets(user_dir=user_dir)["qwen2.5-7b"]
    assert mine.levels["quality"].lr == 3e-5
    assert mine.levels["quality"].epochs == shipped.levels["quality"].epochs
    assert mine.levels["highspeed"] == shipped.levels["highspeed"]
    assert mine.facts == shipped.facts
    assert mine.source == user_dir / "qwen2.5-7b.toml"
    assert mine.merged_from == (shipped.source, user_dir / "qwen2.5-7b.toml")
    assert mine.user_defined


def test_user_config_dir_is_the_default_place(monkeypatch, tmp_path):
    home = tmp_path / "cfg"
    (home / "presets").mkdir(parents=True)
    (home / "presets" / "tinyllama-1.1b.toml").write_text("[levels.highspeed]\nepochs = 7\n", encoding="utf-8")
    monkeypatch.setenv("TUI_TRAINER_CONFIG_HOME", str(home))
    assert get_preset("tinyllama-1.1b").levels["highspeed"].epochs == 7


def test_user_file_can_extend_a_preset_under_a_new_name(user_dir):
    (user_dir / "my-qwen.toml").write_text(
        'extends = "qwen2.5-0.5b"\ndescription = "my fine-tuned Qwen"\n[model]\nhub_id = "/data/my-qwen"\n',
        encoding="utf-8",
    )
    (user_dir / "my-qwen-long.toml").write_text(
        'extends = "my-qwen"\n[levels.quality]\nmax_seq_len = 8192\n', encoding="utf-8"
    )
    presets = load_presets(user_dir=user_dir)
    base, mine, longer = presets["qwen2.5-0.5b"], presets["my-qwen"], presets["my-qwen-long"]
    assert mine.facts.hub_id == "/data/my-qwen"
    assert mine.facts.params == base.facts.params
    assert mine.description == "my fine-tuned Qwen"
    assert longer.facts.hub_id == "/data/my-qwen"
    assert longer.levels["quality"].max_seq_len == 8192
    assert len(longer.merged_from) == 3


def test_user_file_can_add_a_complete_new_family(user_dir):
    text = shipped_text("tinyllama-1.1b").replace("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "/models/tl")
    (user_dir / "tl-local.toml").write_text(text, encoding="utf-8")
    preset = get_preset("tl-local", user_dir=user_dir)
    assert preset.facts.hub_id == "/models/tl"
    assert preset.merged_from == (user_dir / "tl-local.toml",)


def test_extends_errors_name_the_file(user_dir):
    (user_dir / "a.toml").write_text('extends = "b"\n', encoding="utf-8")
    (user_dir / "b.toml").write_text('extends = "a"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"(a|b)\.toml: extends = .* makes a cycle"):
        load_presets(user_dir=user_dir)
    (user_dir / "b.toml").write_text('extends = "no-such-family"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b\.toml: extends = 'no-such-family' is not a known preset"):
        load_presets(user_dir=user_dir)


# ---------------------------------------------------------------- bad files


def load_bad(user_dir: Path, text: str, name: str = "bad") -> str:
    path = user_dir / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_presets(user_dir=user_dir)
    message = str(info.value)
    assert str(path) in message
    return message


def test_unknown_key_is_named_with_its_table(user_dir):
    text = shipped_text("qwen2.5-0.5b").replace("lora_dropout = 0.05", "lora_dropuot = 0.05", 1)
    message = load_bad(user_dir, text)
    assert "unknown key 'levels.highspeed.lora_dropuot'" in message
    assert "lora_dropout" in message  # the valid keys are listed


def test_unknown_top_level_key_in_an_override(user_dir):
    message = load_bad(user_dir, "learning_rate = 1e-4\n", name="qwen2.5-7b")
    assert "unknown key 'learning_rate'" in message
    assert "applied over" in message and "qwen2.5-7b.toml" in message


def test_bad_value_is_named(user_dir):
    message = load_bad(user_dir, "[levels.quality]\nlr = -1.0\n", name="mistral-7b")
    assert "levels.quality.lr must be greater than 0, got -1.0" in message


def test_wrong_type_is_named(user_dir):
    message = load_bad(user_dir, '[levels.bestaccuracy]\neffective_batch = "big"\n', name="phi-3-mini")
    assert "levels.bestaccuracy.effective_batch" in message
    assert "'big'" in message


def test_unknown_level_and_scheduler(user_dir):
    message = load_bad(user_dir, "[levels.turbo]\nlr = 1e-4\n", name="llama-3.2-1b")
    assert "unknown level 'turbo'" in message
    message = load_bad(user_dir, '[levels.quality]\nlr_scheduler = "cosin"\n', name="llama-3.2-1b")
    assert "levels.quality.lr_scheduler" in message and "cosine" in message


def test_syntax_error_names_the_file(user_dir):
    message = load_bad(user_dir, "[levels.quality\nlr = 1\n")
    assert "TOML syntax error" in message


def test_new_family_missing_keys(user_dir):
    message = load_bad(user_dir, 'chat_template_note = "x"\n[model]\nhub_id = "a/b"\n')
    assert "model.params is required" in message
    assert "lora is required" in message
    assert "levels is required" in message


def test_params_that_disagree_with_the_shape_are_caught(user_dir):
    text = shipped_text("mistral-7b").replace("params = 7_248_023_552", "params = 7_000_000")
    message = load_bad(user_dir, text)
    assert "params = 7,000,000 but" in message and "7,248,023,552" in message


def test_lora_family_needs_rank_in_every_level(user_dir):
    text = shipped_text("demo-tiny").replace("enabled = false", "enabled = true")
    message = load_bad(user_dir, text)
    assert "lora_r and lora_alpha are required" in message


def test_shipped_file_errors_name_the_shipped_file(monkeypatch, tmp_path):
    shutil.copytree(shipped_presets_dir(), tmp_path / "presets")
    (tmp_path / "presets" / "phi-3-mini.toml").write_text("oops = [\n", encoding="utf-8")
    monkeypatch.setattr("tui_trainer.planning.presets.shipped_presets_dir", lambda: tmp_path / "presets")
    with pytest.raises(ConfigError, match=r"presets/phi-3-mini\.toml: TOML syntax error"):
        load_presets(user_dir=tmp_path / "none")


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        get_preset("llama-9000")
    message = str(info.value)
    assert "unknown preset 'llama-9000'" in message
    for family in FAMILIES:
        assert family in message


# ---------------------------------------------------------------- CLI


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from tui_trainer.cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_and_show(capsys):
    code, out, _ = run_cli(capsys, "presets", "list")
    assert code == 0
    for family in FAMILIES:
        assert family in out
    code, bare, _ = run_cli(capsys, "presets")
    assert code == 0 and bare == out
    code, out, _ = run_cli(capsys, "presets", "show", "qwen2.5-7b")
    assert code == 0
    assert "Qwen/Qwen2.5-7B-Instruct" in out and "152064" in out and "bestaccuracy" in out
    assert "small data:" in out


def test_cli_unknown_preset_is_exit_2(capsys):
    code, _, err = run_cli(capsys, "presets", "show", "nope")
    assert code == 2
    assert "unknown preset 'nope'" in err and "Traceback" not in err
