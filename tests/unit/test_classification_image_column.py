"""Image-column datasets (a parquet file or a save_to_disk directory), read through ``datasets`` and
decoded with Pillow: PIL images (the Image feature), raw bytes and paths; bad rows named by file and row."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from tests.unit.test_classification_data import _cfg, _prepare
from tui_trainer.errors import DataError

SHADES = {"happy": (200, 40, 40), "sad": (20, 60, 220)}


def _images(n_per_class: int) -> tuple[list[Image.Image], list[str]]:
    images, labels = [], []
    for label, colour in SHADES.items():
        for i in range(n_per_class):
            mode = "L" if i % 2 else "RGB"  # grayscale and colour rows mix
            img = Image.new("RGB", (8 + i, 8), colour)
            images.append(img.convert(mode))
            labels.append(label)
    return images, labels


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _pixels_by_label(task, prepared) -> dict[str, np.ndarray]:
    """Mean pixel value of each class's training rows, from the collated batches."""
    train = prepared[0].train
    batch = task.collate(prepared, [(0, r) for r in range(len(train))])
    pixels, labels = batch.tensors["pixel_values"].numpy(), batch.tensors["labels"].numpy()
    return {task.labels[c]: pixels[labels == c].mean(axis=(0, 2, 3)) for c in range(len(task.labels))}


def test_a_parquet_file_with_pil_images_and_class_labels(tmp_path):
    images, labels = _images(4)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(SHADES))})
    ds = datasets.Dataset.from_dict({"image": images, "label": [list(SHADES).index(x) for x in labels]}, features=features)
    path = tmp_path / "faces.parquet"
    ds.to_parquet(str(path))
    task, prepared = _prepare(tmp_path, _cfg(tmp_path, path, model="demo:tiny-vit"))
    assert task.labels == ("happy", "sad")  # the ClassLabel's names, not 0 and 1
    assert len(prepared[0].train) + len(prepared[0].eval) == 8
    means = _pixels_by_label(task, prepared)
    # Decoded pixels, not garbage: the red class is redder than the blue one in channel 0, bluer in channel 2
    # (grayscale rows pull both towards grey, the order stays).
    assert means["happy"][0] > means["sad"][0] and means["happy"][2] < means["sad"][2]


def test_a_saved_dataset_with_raw_bytes_and_string_labels(tmp_path):
    images, labels = _images(3)
    ds = datasets.Dataset.from_dict({"img": [_png(i) for i in images], "emotion": labels})
    ds.save_to_disk(str(tmp_path / "saved"))
    cfg = _cfg(tmp_path, tmp_path / "saved", model="demo:tiny-vit", image_field="img", label_field="emotion")
    task, prepared = _prepare(tmp_path, cfg)
    assert task.labels == ("happy", "sad")
    batch = task.collate(prepared, [(0, 0)])
    assert tuple(batch.tensors["pixel_values"].shape) == (1, 3, 16, 16)


def test_a_parquet_file_with_image_paths_relative_to_it(tmp_path):
    images, labels = _images(3)
    (tmp_path / "imgs").mkdir()
    paths = []
    for n, img in enumerate(images):
        img.save(tmp_path / "imgs" / f"{n}.png")
        paths.append(f"imgs/{n}.png")
    datasets.Dataset.from_dict({"image": paths, "label": labels}).to_parquet(str(tmp_path / "m.parquet"))
    task, prepared = _prepare(tmp_path, _cfg(tmp_path, tmp_path / "m.parquet", model="demo:tiny-vit"))
    assert task.labels == ("happy", "sad") and len(prepared[0].train) + len(prepared[0].eval) == 6


def test_a_corrupt_image_is_named_by_file_and_row(tmp_path):
    images, labels = _images(3)
    column = [_png(i) for i in images]
    column[4] = b"\x89PNG\r\n\x1a\nnot really"
    path = tmp_path / "faces.parquet"
    datasets.Dataset.from_dict({"image": column, "label": labels}).to_parquet(str(path))
    with pytest.raises(DataError, match=r"faces\.parquet row 4: not a readable image"):
        _prepare(tmp_path, _cfg(tmp_path, path, model="demo:tiny-vit"))


def test_a_row_without_a_label_or_an_image_is_named(tmp_path):
    images, labels = _images(3)
    no_label = datasets.Dataset.from_dict({"image": [_png(i) for i in images], "label": [*labels[:-1], None]})
    no_label.save_to_disk(str(tmp_path / "a"))
    with pytest.raises(DataError, match=r"a row 5: no label in column 'label'"):
        _prepare(tmp_path, _cfg(tmp_path, tmp_path / "a", model="demo:tiny-vit"))
    no_image = datasets.Dataset.from_dict({"image": [*[_png(i) for i in images[:-1]], None], "label": labels})
    no_image.save_to_disk(str(tmp_path / "b"))
    with pytest.raises(DataError, match=r"b row 5: column 'image' holds no image"):
        _prepare(tmp_path, _cfg(tmp_path, tmp_path / "b", model="demo:tiny-vit"))


def test_a_saved_dataset_without_the_label_column_names_its_columns(tmp_path):
    images, _ = _images(2)
    datasets.Dataset.from_dict({"image": [_png(i) for i in images], "y": [0, 1, 0, 1]}).save_to_disk(str(tmp_path / "s"))
    with pytest.raises(DataError, match=r"no label column 'label' \(columns: image, y\)"):
        _prepare(tmp_path, _cfg(tmp_path, tmp_path / "s", model="demo:tiny-vit"))


def test_a_changed_file_is_prepared_again(tmp_path):
    images, labels = _images(3)
    path = tmp_path / "faces.parquet"
    datasets.Dataset.from_dict({"image": [_png(i) for i in images], "label": labels}).to_parquet(str(path))
    _, first = _prepare(tmp_path, _cfg(tmp_path, path, model="demo:tiny-vit"))
    _, again = _prepare(tmp_path, _cfg(tmp_path, path, model="demo:tiny-vit"))
    assert again[0].stats.cached and not first[0].stats.cached
    flipped = [labels[-1 - n] for n in range(len(labels))]
    datasets.Dataset.from_dict({"image": [_png(i) for i in images], "label": flipped}).to_parquet(str(path))
    _, changed = _prepare(tmp_path, _cfg(tmp_path, path, model="demo:tiny-vit"))
    assert not changed[0].stats.cached
    assert Path(changed[0].stats.cache_path) != Path(first[0].stats.cache_path)
