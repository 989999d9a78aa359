"""Figures for the classification task on demo:digits-imbalanced (16.5:1): capped vs full, weighted vs not.

Prints one JSON object: per variant, the final eval's macro-F1 and accuracy, the rare digit's
recall on its 2 eval rows and on the 172 images of that digit the imbalanced demo left out.
Same seed, steps and model (the tiny ViT) for every variant. Run: python benchmarks/classification_imbalance.py [STEPS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import numpy as np
import torch

from tui_trainer.api import train
from tui_trainer.config.schema import config_from_dict
from tui_trainer.demo.classification_demos import classification_demo_path, classification_run_config
from tui_trainer.demo.digits import IMBALANCED_COUNTS


def unseen_rare(rare: str) -> list:
    kept = {p.name for p in (classification_demo_path("demo:digits-imbalanced") / rare).iterdir()}
    return sorted(p for p in (classification_demo_path("demo:digits") / rare).iterdir() if p.name not in kept)


def recall_on(final, paths, label: str) -> float:
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(final).eval()
    processor = AutoImageProcessor.from_pretrained(final)
    with torch.no_grad():
        logits = model(**processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")).logits
    return float(np.mean([model.config.id2label[int(i)] == label for i in logits.argmax(-1)]))


def main(steps: int) -> None:
    torch.set_num_threads(1)
    rare = str(int(np.argmin(IMBALANCED_COUNTS)))
    held_out = unseen_rare(rare)
    out = {"steps": steps, "rare_digit": rare, "unseen_rare_images": len(held_out), "variants": {}}
    for cap in (0, 30):
        for weighting in ("none", "balanced"):
            with tempfile.TemporaryDirectory() as tmp:
                raw = classification_run_config(steps=steps, output_dir=tmp, weighting=weighting).to_dict()
                raw["classification"]["max_samples_per_class"] = cap
                raw["train"]["eval_every"] = steps
                started = time.perf_counter()
                result = train(config_from_dict(raw))
                events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
                last = [e for e in events if e["type"] == "eval"][-1]["metrics"]
                out["variants"][f"{'capped' + str(cap) if cap else 'full'}/{weighting}"] = {
                    "macro_f1": round(last["macro_f1"], 4),
                    "accuracy": round(last["accuracy"], 4),
                    "balanced_accuracy": round(last["balanced_accuracy"], 4),
                    "rare_recall_eval": round(last["recall"][rare], 4),
                    "rare_recall_unseen": round(recall_on(result.run_dir / "final", held_out, rare), 4),
                    "seconds": round(time.perf_counter() - started, 1),
                }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
