"""The classification task end to end: imbalance handling, saved-model predictions, exact resume, MiniLM LoRA."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.integration.conftest import assert_bitwise_equal, cli, final_weights, popen, write_cfg
from tui_trainer.api import train
from tui_trainer.config.schema import config_from_dict
from tui_trainer.demo.classification_demos import classification_demo_path, classification_run_config
from tui_trainer.demo.digits import IMBALANCED_COUNTS

pytestmark = pytest.mark.slow
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _one_thread():
    # A 70k-parameter ViT is slowed down, not sped up, by a second thread on a shared 2-core machine;
    # one thread also fixes the reduction order for the bitwise comparison.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _evals(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "eval"]


def _predict_images(final: Path, paths: list[Path]) -> list[str]:
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(final).eval()
    processor = AutoImageProcessor.from_pretrained(final)
    images = [Image.open(p).convert("RGB") for p in paths]
    with torch.no_grad():
        logits = model(**processor(images=images, return_tensors="pt")).logits
    return [model.config.id2label[int(i)] for i in logits.argmax(-1)]


RARE = str(int(np.argmin(IMBALANCED_COUNTS)))


@pytest.fixture(scope="module")
def digit_runs(tmp_path_factory):
    """demo:digits-imbalanced, tiny ViT, the same seed and steps, weighted and not."""
    out = {}
    for weighting in ("none", "balanced"):
        tmp = tmp_path_factory.mktemp(weighting)
        raw = classification_run_config(steps=240, output_dir=str(tmp / "runs"), weighting=weighting).to_dict()
        # Only the last eval is read; the ones before it (step 0, 80, 160) change no weights.
        raw["train"].update({"eval_every": 0, "eval_at_start": False})
        result = train(config_from_dict(raw))
        assert result.status == "finished", result.message
        out[weighting] = result.run_dir
    return out


def _unseen_rare_digits() -> list[Path]:
    """Images of the rare digit that the imbalanced demo left out: a held-out set of 170, not 2."""
    kept = {p.name for p in (classification_demo_path("demo:digits-imbalanced") / RARE).iterdir()}
    return sorted(p for p in (classification_demo_path("demo:digits") / RARE).iterdir() if p.name not in kept)


def test_balanced_weighting_raises_the_rare_class_recall(digit_runs):
    unseen = _unseen_rare_digits()
    assert len(unseen) > 150
    recall = {}
    for weighting, run_dir in digit_runs.items():
        predicted = _predict_images(run_dir / "final", unseen)
        recall[weighting] = float(np.mean([p == RARE for p in predicted]))
        last = _evals(run_dir)[-1]["metrics"]
        print(f"{weighting}: rare digit {RARE} recall {recall[weighting]:.3f} on {len(unseen)} unseen images; "
              f"eval macro-F1 {last['macro_f1']:.3f}, accuracy {last['accuracy']:.3f}")
    assert recall["balanced"] > recall["none"] + 0.1


def test_saved_model_reproduces_the_reported_accuracy_and_labels(digit_runs):
    from tui_trainer.tasks.classification.data import read_labeled
    from tui_trainer.tasks.classification.split import label_order, stratified_split

    run_dir = digit_runs["balanced"]
    report = json.loads((run_dir / "report.json").read_text())
    reported = report["task"]["last_eval"]["metrics"]
    assert reported == _evals(run_dir)[-1]["metrics"]
    # The eval split, rebuilt from the records with the run's seed and fraction.
    records = read_labeled("demo:digits-imbalanced", text_field="text", label_field="label", image_field="image")
    order = label_order(records.labels, [])
    ids = np.array([order.index(label) for label in records.labels])
    _, held = stratified_split(ids, 0.2, seed=42)
    held = np.random.default_rng(42 + 2).permutation(held)
    predicted = _predict_images(run_dir / "final", [Path(records.inputs[i]) for i in held])
    truth = [records.labels[i] for i in held]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    assert accuracy == pytest.approx(reported["accuracy"], abs=1e-9)
    assert report["task"]["datasets"]["digits"]["imbalance_before_cap"] == 16.5
    assert reported["labels"] == [str(d) for d in range(10)]
    assert len(reported["confusion_matrix"]) == 10


def _resume_cfg(tmp_path: Path):
    cfg = classification_run_config(steps=8, output_dir=str(tmp_path / "runs"), weighting="balanced")
    raw = cfg.to_dict()
    raw["run"]["name"] = "cls"
    # One 8-row eval at the end: evals change no weights, and the weights are what is compared.
    raw["train"].update({"micro_batch_size": 8, "grad_accum": 2, "eval_every": 0, "eval_at_start": False, "eval_max_rows": 8})
    raw["checkpoint"] = {"every_steps": 4, "every_minutes": 0, "keep_last": 5}
    raw["classification"].update({"loss": "focal", "max_samples_per_class": 40})
    return config_from_dict(raw)


def test_kill9_then_resume_is_bitwise_equal(tmp_path):
    straight = train(_resume_cfg(tmp_path / "straight"))
    assert straight.status == "finished"
    cfg_path = write_cfg(_resume_cfg(tmp_path), tmp_path / "run.toml")
    proc = popen("train", str(cfg_path), env={"TUI_TRAINER_FAULTS": "hang@6", **ONE_THREAD})
    events = None
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("cls-*/events.jsonl"))
        if found and any(
            json.loads(line)["type"] == "step" and json.loads(line)["step"] == 6 for line in found[0].read_text().splitlines()
        ):
            events = found[0]
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert events is not None, "the child never reached step 6"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = cli("train", str(cfg_path), "--resume", "auto", env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    assert_bitwise_equal(final_weights(straight.run_dir), final_weights(events.parent))


def test_minilm_lora_beats_the_majority_class_on_python_topics(tmp_path):
    from sklearn.metrics import f1_score

    # 45 steps (was 60): macro-F1 0.211 against the majority class's 0.085, still well past the +0.05 asked; 30 steps is not.
    cfg = classification_run_config(steps=45, output_dir=str(tmp_path / "runs"), dataset="demo:python-topics")
    raw = cfg.to_dict()
    raw["train"].update({"eval_every": 0, "eval_at_start": False, "eval_max_rows": 128})
    raw["classification"]["class_weighting"] = "sqrt_balanced"
    result = train(config_from_dict(raw))
    assert result.status == "finished", result.message
    last = _evals(result.run_dir)[-1]["metrics"]
    support = last["support"]
    majority = max(support, key=support.get)
    truth = [label for label, n in support.items() for _ in range(n)]
    baseline = f1_score(truth, [majority] * len(truth), average="macro", labels=list(support), zero_division=0)
    print(f"python-topics: MiniLM LoRA macro-F1 {last['macro_f1']:.3f} vs majority-class {baseline:.3f}")
    assert last["macro_f1"] > baseline + 0.05
    assert (result.run_dir / "final" / "adapter" / "adapter_config.json").is_file()


def test_demo_command_trains_offline_and_prints_recall_before_and_after(tmp_path):
    done = cli("demo", "--task", "classification", "--steps", "6", "--out", str(tmp_path), env={"HF_HUB_OFFLINE": "1", **ONE_THREAD})
    assert done.returncode == 0, done.stderr
    assert "per-class recall, step 0 -> step 6" in done.stdout and "<- rarest" in done.stdout
    report = json.loads(next(tmp_path.glob("demo-classification-*/report.json")).read_text())
    assert report["task"]["last_eval"]["metrics"]["confusion_matrix"]
