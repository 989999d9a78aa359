"""Classification data: records and image folders in, bad input out as a named UserError (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tui_trainer.config.schema import config_from_dict
from tui_trainer.demo.catalog import resolve_model_path
from tui_trainer.errors import ConfigError, DataError
from tui_trainer.tasks.classification.task import ClassificationTask


def _cfg(tmp_path: Path, path: Path, model: str = "demo:minilm", **section):
    return config_from_dict(
        {
            "run": {"task": "classification", "output_dir": str(tmp_path / "runs")},
            "model": {"name_or_path": model},
            "data": {"eval_fraction": 0.25, "max_seq_len": 32, "datasets": [{"name": "d", "path": str(path)}]},
            "classification": section,
        }
    )


def _prepare(tmp_path: Path, cfg):
    task = ClassificationTask()
    task.setup(cfg, resolve_model_path(cfg.model.name_or_path))
    return task, task.prepare(cfg, cache_root=tmp_path / "cache")


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _image_folder(root: Path, per_class: dict[str, int]) -> Path:
    for label, n in per_class.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            mode = "L" if i % 2 else "RGB"  # grayscale and colour files mix
            Image.new(mode, (8 + i, 8), color=40 * i % 255).save(root / label / f"{i}.{'png' if i % 3 else 'bmp'}")
    return root


def test_text_records_become_rows_with_a_sorted_label_order(tmp_path):
    rows = [{"text": f"sample {i}", "label": ["b", "a", "c"][i % 3]} for i in range(24)]
    task, prepared = _prepare(tmp_path, _cfg(tmp_path, _jsonl(tmp_path / "d.jsonl", rows), max_samples_per_class=4))
    assert task.labels == ("a", "b", "c")
    counts = task.class_counts["d"]
    assert counts.before == (6, 6, 6) and counts.after == (4, 4, 4) and counts.eval == (2, 2, 2)
    assert len(prepared[0].train) == 12 and len(prepared[0].eval) == 6
    assert "imbalance 1.0:1" in task.plan_lines()[0]


def test_image_folder_in_fer2013_layout(tmp_path):
    folder = _image_folder(tmp_path / "faces", {"happy": 8, "disgust": 4})
    task, prepared = _prepare(tmp_path, _cfg(tmp_path, folder, model="demo:tiny-vit", class_weighting="balanced"))
    assert task.labels == ("disgust", "happy")
    batch = task.collate(prepared, [(0, 0), (0, 1)])
    assert tuple(batch.tensors["pixel_values"].shape) == (2, 3, 16, 16)
    assert task.loss_spec.weights[0] > task.loss_spec.weights[1]


def test_a_record_without_a_label_is_named_by_line(tmp_path):
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}, {"text": "z"}]
    path = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"d\.jsonl:3: record has no label in field 'label'"):
        _prepare(tmp_path, _cfg(tmp_path, path))


def test_a_label_outside_the_fixed_labels_is_named(tmp_path):
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}, {"text": "z", "label": "oops"}]
    path = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"d\.jsonl:3: label 'oops' is not in classification.labels"):
        _prepare(tmp_path, _cfg(tmp_path, path, labels=["a", "b"]))


def test_one_class_only_is_refused(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "label": 1} for i in range(5)])
    with pytest.raises(DataError, match="at least two classes"):
        _prepare(tmp_path, _cfg(tmp_path, path))


def test_a_corrupt_image_is_named(tmp_path):
    folder = _image_folder(tmp_path / "faces", {"happy": 3, "sad": 3})
    (folder / "sad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"broken\.png: not a readable image"):
        _prepare(tmp_path, _cfg(tmp_path, folder, model="demo:tiny-vit"))


def test_an_empty_class_folder_is_named(tmp_path):
    folder = _image_folder(tmp_path / "faces", {"happy": 3, "sad": 3})
    (folder / "angry").mkdir()
    with pytest.raises(DataError, match=r"angry: class folder 'angry' has no images"):
        _prepare(tmp_path, _cfg(tmp_path, folder, model="demo:tiny-vit"))


def test_image_records_with_paths_relative_to_the_file(tmp_path):
    folder = _image_folder(tmp_path / "imgs", {"x": 3, "y": 3})
    rows = [{"image": f"imgs/{c}/{i}.{'png' if i % 3 else 'bmp'}", "label": c} for c in "xy" for i in range(3)]
    task, prepared = _prepare(tmp_path, _cfg(tmp_path, _jsonl(tmp_path / "m.jsonl", rows), model="demo:tiny-vit"))
    assert task.labels == ("x", "y") and len(prepared[0].train) + len(prepared[0].eval) == 6


def test_negative_focal_gamma_and_a_section_for_another_task_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="classification.focal_gamma must be >= 0"):
        _cfg(tmp_path, tmp_path, focal_gamma=-0.5)
    with pytest.raises(ConfigError, match=r'\[classification\] section needs run.task = "classification"'):
        config_from_dict({"classification": {"loss": "focal"}})


def test_csv_records_with_integer_labels_sort_numerically(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{[2, 10, 1][i % 3]}\n" for i in range(12)))
    task, _ = _prepare(tmp_path, _cfg(tmp_path, path))
    assert task.labels == ("1", "2", "10")
