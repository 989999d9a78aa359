"""The wizard's form rules (pure): task switches stay valid, rows follow the config, errors find their field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.config.schema import RunConfig
from tui_trainer.tasks.registry import TASK_NAMES
from tui_trainer.ui.config_form import ALL_FIELDS, fields_in, is_shown, validate, with_task, with_value

BY_KEY = {f.key: f for f in ALL_FIELDS}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(TASK_NAMES), min_size=1, max_size=6))
def test_any_sequence_of_task_switches_validates_with_only_its_section(tasks: list[str]) -> None:
    raw = RunConfig().to_dict()
    for task in tasks:
        raw = with_task(raw, task)
        cfg = validate(raw)
        assert cfg.run.task == task
        for other in ("sae", "classification"):
            assert (other in raw) == (other == task)


def test_with_task_keeps_earlier_values_and_defaults_the_rest() -> None:
    raw = with_task(RunConfig().to_dict(), "sae", {"layer": 2})
    assert raw["sae"]["layer"] == 2 and raw["sae"]["architecture"] == "topk"


def test_rows_follow_the_task_and_the_architecture() -> None:
    raw = with_task(RunConfig().to_dict(), "sae")
    assert is_shown(BY_KEY["sae.k"], raw) and not is_shown(BY_KEY["sae.l1_coefficient"], raw)
    assert not is_shown(BY_KEY["lora.r"], raw) and not is_shown(BY_KEY["classification.loss"], raw)
    standard = with_value(raw, "sae.architecture", "standard")
    assert not is_shown(BY_KEY["sae.k"], standard) and is_shown(BY_KEY["sae.l1_coefficient"], standard)
    lm = RunConfig().to_dict()
    assert is_shown(BY_KEY["lora.r"], lm) and not is_shown(BY_KEY["lora.r"], with_value(lm, "lora.enabled", False))


def test_fields_in_names_exact_keys_only() -> None:
    named = fields_in("wizard: train.lr must be > 0, got -1\nwizard: sae.k must be > 0, got 0")
    assert [f.key for f in named] == ["train.lr", "sae.k"]
    # train.lr_scheduler is not train.lr; data.max_seq_len is not a prefix match of anything else
    assert [f.key for f in fields_in("wizard: train.lr_scheduler must be 'cosine'")] == ["train.lr_scheduler"]
