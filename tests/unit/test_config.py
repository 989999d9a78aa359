"""Config schema: defaults, validation messages naming the key path, round-trip, --set overrides."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.config.io import apply_override, dumps_config, load_config, loads_config, save_config
from tui_trainer.config.schema import RunConfig, config_fields, config_from_dict
from tui_trainer.errors import ConfigError

DS = [{"name": "code", "path": "demo:python-code"}]


def test_defaults_match_design():
    cfg = RunConfig()
    assert cfg.run.seed == 42 and cfg.run.output_dir == "runs" and cfg.run.task == "causal_lm"
    assert cfg.model.name_or_path == "demo:tiny-llama" and cfg.model.trust_remote_code is False
    assert (cfg.lora.enabled, cfg.lora.r, cfg.lora.alpha, cfg.lora.target_modules) == (True, 16, 32, "all-linear")
    assert (cfg.data.strategy, cfg.data.max_seq_len, cfg.data.packing, cfg.data.eval_fraction) == ("weighted", 512, True, 0.05)
    assert (cfg.train.micro_batch_size, cfg.train.grad_accum, cfg.train.lr) == (8, 4, 2e-4)
    assert (cfg.train.lr_scheduler, cfg.train.precision, cfg.train.tf32) == ("cosine", "auto", True)
    assert (cfg.checkpoint.every_steps, cfg.checkpoint.every_minutes, cfg.checkpoint.keep_last) == (100, 15, 3)
    assert cfg.effective_batch == 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"train": {"lr": -1}}, "train.lr must be > 0, got -1"),
        ({"train": {"lr": float("nan")}}, "train.lr"),
        ({"train": {"micro_batch_size": 0}}, "train.micro_batch_size must be > 0, got 0"),
        ({"train": {"lr_scheduler": "cosnie"}}, "train.lr_scheduler must be 'cosine', 'linear' or 'constant'"),
        ({"train": {"lerning_rate": 1}}, "unknown key 'train.lerning_rate'"),
        ({"trian": {}}, "unknown key 'trian'"),
        ({"data": {"eval_fraction": 1.5}}, "data.eval_fraction must be < 1"),
        ({"data": {"max_seq_len": 2}}, "data.max_seq_len must be >= 8"),
        ({"data": {"datasets": [{"name": "x"}]}}, "data.datasets[0] (x).path is required"),
        ({"data": {"datasets": [{"name": "x", "path": "p", "wieght": 1}]}}, "unknown key 'data.datasets[0] (x).wieght'"),
        ({"data": {"datasets": [{"name": "x", "path": "p", "weight": -0.5}]}}, "data.datasets[0] (x).weight must be >= 0"),
        ({"lora": {"target_modules": []}}, "lora.target_modules"),
        ({"lora": {"dropout": 1.0}}, "lora.dropout must be < 1"),
        ({"run": {"name": "a/b"}}, "run.name must be a plain name"),
        ({"checkpoint": {"keep_last": 0}}, "checkpoint.keep_last must be >= 1"),
        ({"model": {"dtype": "fp8"}}, "model.dtype must be"),
    ],
)
def test_validation_messages_name_the_key(raw, expected):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, "run.toml")
    message = str(info.value)
    assert message.startswith("run.toml: ")
    assert expected in message


def test_roundtrip_exact(tmp_path):
    cfg = config_from_dict(
        {
            "run": {"name": "x", "seed": 7},
            "lora": {"target_modules": ["q_proj", "v_proj"]},
            "data": {"datasets": [{"name": "a", "path": "a.jsonl", "weight": 0.3, "text_field": "body"}]},
            "train": {"lr": 1e-4, "max_steps": 10},
        }
    )
    path = tmp_path / "run.toml"
    save_config(cfg, path)
    again = load_config(path)
    assert again == cfg
    assert dumps_config(again) == path.read_text()


def test_toml_syntax_error_reports_file_and_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[train]\nlr = 1e-4\nmax_steps = = 3\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: TOML syntax error: .*line 3"):
        load_config(path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_overrides_convert_types_and_validate(tmp_path):
    path = tmp_path / "run.toml"
    save_config(config_from_dict({"data": {"datasets": DS}}), path)
    cfg = load_config(
        path,
        ["train.lr=1e-4", "train.max_steps=5", "data.packing=false", "run.name=abc", "data.datasets.code.weight=0.5"],
    )
    assert cfg.train.lr == 1e-4 and cfg.train.max_steps == 5 and cfg.data.packing is False
    assert cfg.run.name == "abc" and cfg.data.datasets[0].weight == 0.5
    with pytest.raises(ConfigError, match="train.lr must be > 0"):
        load_config(path, ["train.lr=-3"])
    with pytest.raises(ConfigError, match="unknown key 'train.lrr'"):
        load_config(path, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["train.lr"])
    with pytest.raises(ConfigError, match="no dataset named 'nope'"):
        load_config(path, ["data.datasets.nope.weight=1"])
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(path, ["bogus.x=1"])


def test_override_list_value():
    raw: dict = {}
    apply_override(raw, 'lora.target_modules=["q_proj","k_proj"]')
    assert config_from_dict(raw).lora.target_modules == ["q_proj", "k_proj"]


def test_every_field_has_a_description():
    rows = config_fields()
    assert len(rows) > 40
    assert all(desc for _, _, desc in rows), [k for k, _, d in rows if not d]


_names = st.text(alphabet="abcdefghij", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(min_value=1e-7, max_value=1.0),
    mb=st.integers(1, 64),
    accum=st.integers(1, 16),
    seed=st.integers(0, 2**31),
    names=st.lists(_names, min_size=1, max_size=5, unique=True),
    weights=st.lists(st.floats(min_value=0.01, max_value=10), min_size=5, max_size=5),
    packing=st.booleans(),
)
def test_property_roundtrip_any_valid_config(lr, mb, accum, seed, names, weights, packing):
    raw = {
        "run": {"seed": seed},
        "train": {"lr": lr, "micro_batch_size": mb, "grad_accum": accum},
        "data": {"packing": packing, "datasets": [{"name": n, "path": f"{n}.jsonl", "weight": w} for n, w in zip(names, weights)]},
    }
    cfg = config_from_dict(raw)
    assert loads_config(dumps_config(cfg)) == cfg
    assert tomllib.loads(dumps_config(cfg))["train"]["lr"] == lr


@settings(max_examples=60, deadline=None)
@given(
    section=st.sampled_from(["run", "model", "lora", "data", "train", "checkpoint"]),
    key=st.text(alphabet="xyzqw_", min_size=3, max_size=8),
)
def test_property_unknown_keys_always_rejected(section, key):
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({section: {key: 1}})
