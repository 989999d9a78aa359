"""``demo:digits`` and ``demo:digits-imbalanced``: scikit-learn's bundled 8x8 digits as image folders.

load_digits ships inside scikit-learn (1,797 images, 10 classes, no download), so the image
side of the classification task has a real dataset on every machine. The imbalanced
variant keeps FER2013's shape: the largest class is 16.5x the smallest.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from tui_trainer import paths

BUILD_VERSION = "1"
IMBALANCED_COUNTS = (165, 10, 94, 91, 114, 110, 73, 130, 50, 30)
"""Rows kept per digit 0..9: 165 / 10 = 16.5, FER2013's Happy : Disgust ratio; digit 1 is the rare class."""
NAMES = {"demo:digits": "digits", "demo:digits-imbalanced": "digits-imbalanced"}


def image_name(index: int) -> str:
    """File name of load_digits row ``index``; both variants share it, so a test can tell unseen rows."""
    return f"{index:04d}.png"


def kept_indices(target: np.ndarray, imbalanced: bool) -> np.ndarray:
    if not imbalanced:
        return np.arange(len(target))
    return np.concatenate([np.flatnonzero(target == d)[:n] for d, n in enumerate(IMBALANCED_COUNTS)])


def digits_folder(name: str) -> Path:
    """The image folder (one subfolder per digit), written on first use."""
    final = paths.demo_dir() / f"{NAMES[name]}-v{BUILD_VERSION}"
    if (final / "DONE").is_file():
        return final
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; scaled to the 8-bit range every image reader expects.
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        for i in kept_indices(bunch.target, name.endswith("imbalanced")):
            folder = tmp / str(int(bunch.target[i]))
            folder.mkdir(exist_ok=True)
            Image.fromarray(images[i], mode="L").save(folder / image_name(int(i)))
        (tmp / "DONE").write_text("ok\n")
        paths.install_dir(tmp, final, lambda p: (p / "DONE").is_file(), final.with_name(f".{final.name}.old"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


TINY_VIT = {
    "image_size": 16,
    "patch_size": 4,
    "num_channels": 3,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
}
"""Sized for 8x8 digits on a laptop CPU: 16 patches of 4x4 after a 2x upscale, ~70k parameters."""


def tiny_vit_dir() -> Path:
    """``demo:tiny-vit``: a ViT config and image processor, no weights (random init, full training)."""
    from transformers import ViTConfig
    from transformers import ViTImageProcessorPil as ViTImageProcessor

    final = paths.demo_dir() / f"tiny-vit-v{BUILD_VERSION}"
    if (final / "preprocessor_config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        ViTConfig(**TINY_VIT).save_pretrained(tmp)
        size = TINY_VIT["image_size"]
        ViTImageProcessor(
            size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        ).save_pretrained(tmp)
        paths.install_dir(
            tmp, final, lambda p: (p / "preprocessor_config.json").is_file(), final.with_name(f".{final.name}.old")
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
