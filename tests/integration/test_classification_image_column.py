"""An image-column dataset trains exactly as the same images in a folder: the digits demo written as a
parquet file (the datasets Image feature, a ClassLabel) gives the same rows, the same metrics and the
same weights as the folder, through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.integration.conftest import assert_bitwise_equal, final_weights
from tui_trainer.api import train
from tui_trainer.demo.classification_demos import classification_demo_path, classification_run_config
from tui_trainer.tasks.classification.images import IMAGE_EXTENSIONS

pytestmark = pytest.mark.slow
STEPS = 4
PER_CLASS = 16
"""Images of each digit copied from the demo: enough for a stratified split, small enough for seconds."""


def _parquet_of(folder: Path, target: Path) -> Path:
    """The folder's images, in the folder reader's order (class folders by name, files by name), as a parquet file."""
    import datasets

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    images, labels = [], []
    for index, name in enumerate(classes):
        for f in sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            images.append({"bytes": f.read_bytes(), "path": None})
            labels.append(index)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})
    datasets.Dataset.from_dict({"image": images, "label": labels}, features=features).to_parquet(str(target))
    return target


def _subset(source: Path, target: Path) -> Path:
    import shutil

    for cls in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:PER_CLASS]:
            shutil.copy2(f, target / cls.name / f.name)
    return target


def _last_eval(run_dir: Path) -> dict:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "eval"][-1]["metrics"]


def test_a_parquet_image_column_trains_like_the_same_folder(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the reduction order fixed for the bitwise comparison
    try:
        folder = _subset(classification_demo_path("demo:digits"), tmp_path / "digits")
        parquet = _parquet_of(folder, tmp_path / "digits.parquet")
        runs = {}
        for kind, path in (("folder", str(folder)), ("parquet", str(parquet))):
            cfg = classification_run_config(steps=STEPS, output_dir=str(tmp_path / kind), dataset="demo:digits")
            raw = cfg.to_dict()
            raw["data"]["datasets"][0]["path"] = path
            runs[kind] = train(type(cfg).model_validate(raw))
    finally:
        torch.set_num_threads(before)
    folder_run, parquet_run = runs["folder"], runs["parquet"]
    assert folder_run.status == parquet_run.status == "finished"
    a, b = _last_eval(folder_run.run_dir), _last_eval(parquet_run.run_dir)
    assert a["accuracy"] == b["accuracy"] and a["macro_f1"] == b["macro_f1"]
    assert_bitwise_equal(final_weights(folder_run.run_dir), final_weights(parquet_run.run_dir))
    report = json.loads((parquet_run.run_dir / "report.json").read_text())
    assert "imbalance" in json.dumps(report["task"])
