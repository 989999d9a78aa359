"""The ``[classification]`` section (DESIGN §4.2): labels, class imbalance, the capped mode."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ClassificationSection(BaseModel):
    """``run.task = "classification"``: text records or images, one label each."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    label_field: str = Field("label", min_length=1, description="record field holding the label (image folders: the subfolder)")
    image_field: str = Field("image", min_length=1, description="record field holding an image path (relative to the file)")
    labels: list[str] = Field(default_factory=list, description="fixed label order; default: sorted training labels")
    class_weighting: Literal["none", "balanced", "sqrt_balanced"] = Field(
        "none", description="none | balanced (n / (n_classes x count)) | sqrt_balanced, from training counts"
    )
    loss: Literal["cross_entropy", "focal"] = Field("cross_entropy", description="cross_entropy | focal")
    focal_gamma: float = Field(2.0, ge=0, description="focal loss focusing parameter (0 = cross-entropy)")
    max_samples_per_class: int = Field(0, ge=0, description="0 = the full dataset; N = at most N training rows per class")
    metric_for_best: Literal["eval_loss", "accuracy", "macro_f1", "balanced_accuracy"] = Field(
        "macro_f1", description="eval metric that picks the best checkpoint and drives early stopping"
    )
    image_size: int = Field(0, ge=0, description="images: resize to this square size; 0 = the model's image_size")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, v: object) -> object:
        # Integer labels in TOML (labels = [0, 1]) name the same classes as "0", "1" in the records.
        if isinstance(v, list):
            v = [str(x).strip() if isinstance(x, (int, str)) and not isinstance(x, bool) else x for x in v]
            if len(set(v)) != len(v):
                raise ValueError("must not repeat a label")
        return v
