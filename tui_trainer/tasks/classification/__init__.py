"""The ``classification`` task: text or images -> one label, with class imbalance handled (DESIGN §2.1)."""

from tui_trainer.tasks.classification.task import ClassificationTask

__all__ = ["ClassificationTask"]
