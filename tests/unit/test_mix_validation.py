"""Every mix validation message: it names the dataset and the field, and says what to do."""

from __future__ import annotations

from typing import Any

import pytest

from tui_trainer.config.schema import DataSection, DatasetSpec, config_from_dict
from tui_trainer.config.mix_rules import check_mix_runtime, check_mix_static, mix_problems
from tui_trainer.errors import ConfigError


def ds(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "path": f"{name}.jsonl", **kw}


def config_error(data: dict[str, Any], max_steps: int = 0) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": data, "train": {"max_steps": max_steps}}, "run.toml")
    return str(err.value)


def accepted(data: dict[str, Any], max_steps: int = 0) -> None:
    config_from_dict({"data": data, "train": {"max_steps": max_steps}}, "run.toml")


def section(data: dict[str, Any]) -> DataSection:
    """A DataSection built without running the config validators (they would reject some inputs first)."""
    specs = [DatasetSpec.model_construct(**{"weight": 1.0, "max_samples": 0, **d}) for d in data.pop("datasets", [])]
    return DataSection.model_construct(datasets=specs, **data)


def test_duplicate_names():
    msg = config_error({"datasets": [ds("code"), ds("docs"), ds("code")]})
    assert msg.startswith("run.toml: data.datasets[2] (code).name duplicates data.datasets[0]")
    assert "unique name" in msg


@pytest.mark.parametrize("weight", [float("nan"), -0.5, float("inf")])
def test_weight_must_be_finite_and_not_negative(weight):
    problems = mix_problems(section({"strategy": "weighted", "datasets": [ds("code"), ds("docs", weight=weight)]}), None)
    assert len(problems) == 1
    assert problems[0].startswith("data.datasets[1] (docs).weight must be a finite number >= 0")
    assert "use 0 to leave the dataset out" in problems[0]


def test_config_field_validator_still_names_the_dataset_for_negative_weights():
    assert "data.datasets[0] (code).weight must be >= 0" in config_error({"datasets": [ds("code", weight=-1)]})


@pytest.mark.parametrize("strategy", ["weighted", "curriculum"])
def test_all_weights_zero(strategy):
    msg = config_error({"strategy": strategy, "datasets": [ds("a", weight=0, order=0), ds("b", weight=0, order=0)]})
    assert f"data.datasets[].weight is 0 on every dataset, so the {strategy} strategy has nothing to draw from" in msg
    assert "give at least one dataset a weight > 0" in msg


@pytest.mark.parametrize("strategy", ["uniform", "sequential"])
def test_zero_weights_do_not_matter_where_weights_are_not_shares(strategy):
    accepted({"strategy": strategy, "datasets": [ds("a", weight=0, start_step=0, end_step=10)]}, max_steps=10)


def test_weights_must_sum_to_one_without_normalization():
    msg = config_error({"normalize_weights": False, "datasets": [ds("code", weight=0.5), ds("docs", weight=0.4)]})
    assert msg == (
        "run.toml: data.normalize_weights is false but the weights sum to 0.9 (code 0.5 + docs 0.4); "
        "make them sum to 1 or set data.normalize_weights = true"
    )
    accepted({"normalize_weights": False, "datasets": [ds("a", weight=0.1), ds("b", weight=0.2), ds("c", weight=0.7)]})
    accepted({"normalize_weights": True, "datasets": [ds("a", weight=5), ds("b", weight=2)]})


def test_curriculum_order_missing():
    msg = config_error({"strategy": "curriculum", "datasets": [ds("easy", order=0), ds("hard")]})
    assert msg.startswith("run.toml: data.datasets[1] (hard).order is missing; the curriculum strategy needs an order")


@pytest.mark.parametrize(("orders", "bad", "found"), [([0, 2], "[1] (b).order is 2", "0, 2"), ([1, 2, 1], "[1] (b).order is 2", "1, 2")])
def test_curriculum_orders_with_gaps(orders, bad, found):
    msg = config_error({"strategy": "curriculum", "datasets": [ds(n, order=o) for n, o in zip("abc", orders)]})
    assert f"data.datasets{bad}, but the distinct orders must be exactly 0..1 without gaps (found {found})" in msg
    assert "renumber the phases from 0" in msg


def test_curriculum_allows_several_datasets_per_phase():
    accepted({"strategy": "curriculum", "datasets": [ds("a", order=0), ds("b", order=1), ds("c", order=0), ds("d", order=1)]})


def test_curriculum_first_phase_needs_a_weight():
    msg = config_error({"strategy": "curriculum", "datasets": [ds("easy", order=0, weight=0), ds("hard", order=1)]})
    assert msg.startswith("run.toml: data.datasets[0] (easy).weight is 0 and it is the only order-0 dataset")
    assert "give an order-0 dataset a weight > 0" in msg


def test_orders_and_ranges_are_ignored_by_other_strategies():
    accepted({"strategy": "weighted", "datasets": [ds("a", order=3, start_step=5, end_step=6), ds("b", order=7)]})


@pytest.mark.parametrize("missing", ["start_step", "end_step"])
def test_sequential_range_missing(missing):
    spec = {"start_step": 0, "end_step": 10}
    del spec[missing]
    msg = config_error({"strategy": "sequential", "datasets": [ds("a", **spec)]})
    assert msg.startswith(f"run.toml: data.datasets[0] (a).{missing} is missing; the sequential strategy needs start_step and end_step")


def test_sequential_end_before_start():
    msg = config_error({"strategy": "sequential", "datasets": [ds("a", start_step=10, end_step=5)]})
    assert msg == "run.toml: data.datasets[0] (a).end_step is 5 but must be > start_step 10"


def test_sequential_must_start_at_zero():
    msg = config_error({"strategy": "sequential", "datasets": [ds("a", start_step=10, end_step=50), ds("b", start_step=50, end_step=90)]})
    assert msg == "run.toml: data.datasets[0] (a).start_step is 10 but the first range must start at step 0; set it to 0"


def test_sequential_overlap():
    msg = config_error({"strategy": "sequential", "datasets": [ds("a", start_step=0, end_step=500), ds("b", start_step=400, end_step=900)]})
    assert msg.startswith("run.toml: data.datasets[1] (b).start_step 400 overlaps data.datasets[0] (a), which runs to step 500")
    assert "start it at 500 or end a at 400" in msg


def test_sequential_gap_is_judged_against_the_range_reaching_furthest():
    data = {
        "strategy": "sequential",
        "datasets": [ds("a", start_step=0, end_step=1000), ds("b", start_step=100, end_step=200), ds("c", start_step=1200, end_step=1500)],
    }
    msg = config_error(data)
    assert "data.datasets[1] (b).start_step 100 overlaps data.datasets[0] (a)" in msg
    assert "data.datasets[2] (c).start_step 1200 leaves steps 1000..1199 without a dataset after data.datasets[0] (a) ends at 1000" in msg
    assert "start it at 1000" in msg


def test_sequential_must_cover_max_steps_when_it_is_known():
    data = {"strategy": "sequential", "datasets": [ds("a", start_step=0, end_step=300), ds("b", start_step=300, end_step=900)]}
    msg = config_error(data, max_steps=1000)
    assert msg == (
        "run.toml: data.datasets[1] (b).end_step is 900, before the run ends at step 1000 (train.max_steps): "
        "steps 900..999 have no dataset; set end_step = 1000 or lower train.max_steps"
    )
    accepted(data, max_steps=0)  # derived from epochs: checked again at run time
    accepted(data, max_steps=600)  # ranges may reach past the end


def test_several_problems_are_reported_together():
    msg = config_error({"strategy": "curriculum", "datasets": [ds("a"), ds("b"), ds("a", order=1)]})
    lines = msg.splitlines()
    assert lines[0].startswith("run.toml: data.datasets[2] (a).name duplicates")
    assert lines[1] == "  data.datasets[0] (a).order is missing; the curriculum strategy needs an order (the phase it joins, 0..n-1) on every dataset"
    assert lines[2].startswith("  data.datasets[1] (b).order is missing")


def test_no_datasets_is_left_to_the_engine():
    for strategy in ("uniform", "weighted", "curriculum", "sequential"):
        check_mix_static(DataSection(strategy=strategy), max_steps=100)


def _data(strategy: str, *specs: dict[str, Any]) -> DataSection:
    return DataSection(strategy=strategy, datasets=[DatasetSpec(**s) for s in specs])


def runtime_error(data: DataSection, rows: list[int], total_steps: int) -> str:
    with pytest.raises(ConfigError) as err:
        check_mix_runtime(data, rows, total_steps)
    return str(err.value)


def test_runtime_weight_on_a_dataset_without_rows():
    data = _data("weighted", ds("code"), ds("docs", weight=0.3))
    msg = runtime_error(data, [100, 0], 50)
    assert msg.startswith("data.datasets[1] (docs).weight is 0.3 but the dataset has no usable training rows")
    assert "add data to it, or set its weight to 0" in msg
    check_mix_runtime(_data("weighted", ds("code"), ds("docs", weight=0)), [100, 0], 50)


def test_runtime_uniform_draws_from_every_dataset():
    msg = runtime_error(_data("uniform", ds("code"), ds("docs", weight=0)), [100, 0], 50)
    assert msg.startswith("data.datasets[1] (docs).path docs.jsonl gives no usable training rows, but the uniform strategy")


def test_runtime_sequential_range_without_rows():
    data = _data("sequential", ds("a", start_step=0, end_step=20), ds("b", start_step=20, end_step=50))
    msg = runtime_error(data, [0, 10], 50)
    assert msg.startswith("data.datasets[0] (a).path a.jsonl gives no usable training rows, but it is the only dataset for steps 0..19")


def test_runtime_coverage_uses_the_derived_number_of_steps():
    data = _data("sequential", ds("a", start_step=0, end_step=20), ds("b", start_step=20, end_step=50))
    check_mix_runtime(data, [10, 10], 50)
    assert "data.datasets[1] (b).end_step is 50, before the run ends at step 80" in runtime_error(data, [10, 10], 80)


def test_runtime_curriculum_needs_a_step_per_phase():
    data = _data("curriculum", ds("a", order=0), ds("b", order=1), ds("c", order=2))
    msg = runtime_error(data, [5, 5, 5], 2)
    assert msg.startswith("train.max_steps: the run has 2 steps but the curriculum has 3 phases (orders 0..2)")
    check_mix_runtime(data, [5, 5, 5], 3)


def test_runtime_needs_one_row_count_per_dataset():
    with pytest.raises(ValueError, match="got 1 row counts for 2 datasets"):
        check_mix_runtime(_data("weighted", ds("a"), ds("b")), [5], 10)
