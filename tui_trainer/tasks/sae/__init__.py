"""The ``sae`` task: a sparse autoencoder trained on one layer's activations of a frozen causal LM."""

from tui_trainer.tasks.sae.task import SaeTask

__all__ = ["SaeTask"]
