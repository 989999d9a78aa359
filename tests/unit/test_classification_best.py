"""'Best' and early stopping follow the task's metric and its direction (metric_for_best)."""

from tui_trainer.engine.progress_state import RunProgress
from tui_trainer.tasks.classification.task import ClassificationTask, _mean_one
from tui_trainer.config.classification_section import ClassificationSection

import numpy as np
import pytest


def test_higher_is_better_metric_picks_the_best_eval_even_when_the_loss_rises():
    p = RunProgress()
    p.step = 1
    assert p.record_eval(1.0, 0.40, True, "macro_f1")
    p.step = 2
    assert p.record_eval(1.2, 0.55, True, "macro_f1")  # loss worse, F1 better: best
    p.step = 3
    assert not p.record_eval(0.8, 0.50, True, "macro_f1")  # loss better, F1 worse: not best
    assert p.best_step == 2 and p.best_value == 0.55 and p.evals_without_improvement == 1
    assert p.summary(3, 0.0)["best_metric"] == "macro_f1"


def test_the_loss_stays_the_default_and_old_states_load():
    p = RunProgress()
    assert p.record_eval(2.0) and not p.record_eval(2.5) and p.best_eval == 2.0
    state = p.to_state(0.0)
    del state["best_metric"], state["best_value"]
    assert RunProgress.from_state(state).best_eval == 2.0


def test_the_task_names_its_metric_and_direction():
    task = ClassificationTask()
    task.section = ClassificationSection(metric_for_best="balanced_accuracy")
    assert task.best_metric() == ("balanced_accuracy", True)
    task.section = ClassificationSection(metric_for_best="eval_loss")
    assert task.best_metric() == ("eval_loss", False)


@pytest.mark.parametrize("mode", ["balanced", "sqrt_balanced"])
def test_class_weights_have_mean_one_over_the_training_rows(mode):
    counts = np.array([132, 8, 75, 40])
    w = np.array(_mean_one(counts, mode))
    assert float((w * counts).sum() / counts.sum()) == pytest.approx(1.0)
    assert w[1] == max(w)  # the rarest class weighs most
    assert _mean_one(counts, "none") is None


def test_the_latest_evals_task_metrics_reach_the_summary_and_survive_a_checkpoint():
    from tui_trainer.engine.progress_state import RunProgress

    p = RunProgress()
    p.record_eval(1.0, 0.4, True, "macro_f1", metrics={"macro_f1": 0.4, "confusion_matrix": [[3, 1], [0, 2]]})
    p.record_eval(0.9, 0.5, True, "macro_f1", metrics={"macro_f1": 0.5, "confusion_matrix": [[4, 0], [0, 2]]})
    assert p.summary(10, 1.0)["eval_metrics"] == {"macro_f1": 0.5, "confusion_matrix": [[4, 0], [0, 2]]}
    assert RunProgress.from_state(p.to_state(1.0)).eval_metrics["macro_f1"] == 0.5
