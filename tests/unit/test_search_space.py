"""The search space: ranges checked on their own, keys checked against the run config, grid enumeration."""

from __future__ import annotations

import pytest

from tui_trainer.config.schema import config_from_dict
from tui_trainer.errors import ConfigError
from tui_trainer.search.space import apply_params, baseline_params, build_space, grid

DS = [{"name": "code", "path": "demo:python-code"}, {"name": "docs", "path": "demo:python-docs"}]


def raw_with(space: dict, **search) -> dict:
    return {"data": {"datasets": DS}, "train": {"lr": 2e-4}, "search": {"space": space, **search}}


def space_of(raw: dict):
    return build_space(raw, config_from_dict(raw))


def test_ranges_choices_and_kinds():
    raw = raw_with({
        "train.lr": {"low": 1e-5, "high": 1e-3, "log": True},
        "lora.r": {"choices": [8, 16, 32]},
        "train.grad_accum": {"low": 1, "high": 8, "step": 1},
        "data.datasets.code.weight": {"low": 0.1, "high": 0.9, "step": 0.4},
    })
    params = {p.key: p for p in space_of(raw)}
    assert params["train.lr"].kind == "float" and params["train.lr"].log
    assert params["lora.r"].kind == "categorical" and params["lora.r"].choices == (8, 16, 32)
    assert params["train.grad_accum"].kind == "int"  # the config's value is an int, so is the range
    assert params["data.datasets.code.weight"].grid_values() == [0.1, 0.5, 0.9]


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        ({"train.lerning_rate": {"low": 1e-5, "high": 1e-3}}, "unknown key 'train.lerning_rate'"),
        ({"train.lr": {"low": 1e-3, "high": 1e-5}}, "low must be < high"),
        ({"train.lr": {"low": 0.0, "high": 1e-3, "log": True}}, "log = true needs low > 0"),
        ({"train.lr": {"choices": []}}, "at least one value"),
        ({"train.lr": {"low": 1e-5}}, "needs low and high"),
        ({"train.lr": {"low": -1.0, "high": 1e-3}}, 'search.space."train.lr" = -1.0 cannot be set'),
        ({"train": {"low": 1, "high": 2}}, "whole section"),
        ({"data.datasets.nope.weight": {"low": 0.1, "high": 0.9}}, "no dataset named 'nope'"),
        ({"search.trials": {"low": 1, "high": 3}}, "cannot be searched"),
    ],
)
def test_bad_space_is_refused_before_anything_runs(space, needle):
    with pytest.raises(ConfigError) as err:
        space_of(raw_with(space))
    assert needle in str(err.value)


def test_empty_space_says_how_to_write_one():
    with pytest.raises(ConfigError, match=r"search.space is empty; add keys"):
        space_of(raw_with({}))


def test_grid_is_the_product_in_a_fixed_order():
    raw = raw_with({"train.lr": {"choices": [1e-3, 1e-4]}, "lora.r": {"choices": [8, 16, 32]}})
    points = grid(space_of(raw))
    assert len(points) == 6 and len({tuple(p.items()) for p in points}) == 6
    assert points[0] == {"train.lr": 1e-3, "lora.r": 8} and points[-1] == {"train.lr": 1e-4, "lora.r": 32}


def test_grid_needs_a_step_for_float_ranges():
    raw = raw_with({"train.lr": {"low": 1e-5, "high": 1e-3}})
    with pytest.raises(ConfigError, match="needs a step or choices"):
        grid(space_of(raw))


def test_params_apply_through_set_and_baseline_reads_the_config():
    raw = raw_with({"train.lr": {"choices": [1e-3, 1e-4]}, "data.datasets.docs.weight": {"choices": [0.5, 2.0]}})
    params = space_of(raw)
    out = config_from_dict({k: v for k, v in apply_params(raw, {"train.lr": 1e-3, "data.datasets.docs.weight": 2.0}).items() if k != "search"})
    assert out.train.lr == 1e-3 and out.data.datasets[1].weight == 2.0
    assert raw["train"]["lr"] == 2e-4  # the study's own copy is untouched
    assert baseline_params(config_from_dict(raw), params) == {"train.lr": 2e-4, "data.datasets.docs.weight": 1.0}


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_grid_with_the_baseline_on_it_runs_every_point_once(parallel):
    """The baseline is enqueued with its own values; the grid must count it as the point it is.

    optuna's GridSampler handed trial n point n and gave the enqueued baseline no point, so a
    study of grid-size trials ran the baseline's point twice and never ran another one."""
    import optuna

    from tui_trainer.search.study import _sampler

    raw = raw_with({"train.lr": {"choices": [2e-4, 1e-9, 1e-10]}, "lora.r": {"choices": [8, 16]}}, sampler="grid")
    cfg = config_from_dict(raw)
    params = space_of(raw)
    points = grid(params)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=_sampler(cfg.search, params, seed=0, budget=len(points)))
    base = baseline_params(cfg, params)
    assert base in points
    study.enqueue_trial(base)
    seen, running = [], []
    for _ in range(len(points)):  # the study's budget: the grid's size, the baseline included
        trial = study.ask()
        running.append(trial)
        seen.append({p.key: p.suggest(trial) for p in params})
        if len(running) == parallel:
            for t in running:
                study.tell(t, 1.0)
            running.clear()
    for t in running:
        study.tell(t, 1.0)
    assert seen[0] == base
    assert sorted(map(lambda p: tuple(sorted(p.items())), seen)) == sorted(tuple(sorted(p.items())) for p in points)
