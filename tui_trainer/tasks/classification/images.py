"""Images from disk: folders of class subfolders (the FER2013 layout), Pillow decoding, pixel values.

Pixels go through the model's own image processor when its directory has one
(``preprocessor_config.json``); otherwise through a ``ViTImageProcessor`` at the model's
``image_size`` with mean = std = 0.5, which maps [0, 255] to [-1, 1].
Every image is converted to RGB first, so grayscale and colour files mix freely.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tui_trainer.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class EncodedImage:
    """An image held as its encoded file bytes (a parquet or saved dataset's image column)."""

    data: bytes
    """The encoded file (PNG, JPEG, ...) as stored in the column."""
    where: str
    """The dataset file and row, for error messages."""


def is_image_folder(path: Path) -> bool:
    """A directory whose subfolders hold images (one subfolder per class)."""
    if not path.is_dir():
        return False
    return any(
        sub.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in sub.iterdir())
        for sub in path.iterdir()
        if not sub.name.startswith(".")
    )


def scan_image_folder(root: Path) -> list[tuple[Path, str]]:
    """(image path, class name) for every image, classes in name order; an empty class folder is an error."""
    found: list[tuple[Path, str]] = []
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class subfolders; an image dataset needs one subfolder of images per class")
    for folder in classes:
        images = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise DataError(
                f"{folder}: class folder {folder.name!r} has no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "add images or remove the folder"
            )
        found.extend((f, folder.name) for f in images)
    return found


def open_rgb(source: Path | EncodedImage) -> Any:
    """The decoded image as RGB; an unreadable or corrupt file (or column value) is a DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    encoded = isinstance(source, EncodedImage)
    try:
        with Image.open(io.BytesIO(source.data) if encoded else source) as img:
            img.load()  # decode now: a truncated file fails here, not later in the processor
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        if encoded:
            raise DataError(
                f"{source.where}: not a readable image ({err}); replace the row's image or remove the row"
            ) from None
        raise DataError(f"{source}: not a readable image ({err}); replace or delete the file") from None


def image_processor(model_path: str, image_size: int) -> Any:
    """The model's image processor, or the documented default resize + normalize."""
    from transformers import AutoImageProcessor
    from transformers import ViTImageProcessorPil as ViTImageProcessor  # the Pillow backend: torchvision is not needed

    if (Path(model_path) / "preprocessor_config.json").is_file():
        return AutoImageProcessor.from_pretrained(model_path)
    return ViTImageProcessor(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def pixel_values(sources: Sequence[Path | EncodedImage], processor: Any, **overrides: Any) -> np.ndarray:
    """float32 [n, channels, height, width] for ``sources``, in order (``overrides``: per-call processor options)."""
    images = [open_rgb(p) for p in sources]
    return np.asarray(processor(images=images, return_tensors="np", **overrides)["pixel_values"], dtype=np.float32)
