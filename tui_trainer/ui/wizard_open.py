"""Which wizard the datasets screen's "next" opens: the user's earlier values with the new mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import UserError
from tui_trainer.ui.config_form import validate
from tui_trainer.ui.screens.wizard import WizardScreen


def wizard_for_draft(draft: Any, kept: dict[str, Any] | None, output_dir: Path) -> WizardScreen:
    """A fresh wizard (fitted on mount) the first time; afterwards what the user edited or
    loaded stays, and only the mix comes from the datasets screen."""
    previews = [d.preview for d in draft.datasets]
    mix = draft.to_raw()
    fresh = {"data": mix, "run": {"output_dir": str(output_dir)}}
    if kept is None:
        return WizardScreen(RunConfig.model_validate(fresh), data_tokens=draft.est_tokens(), previews=previews)
    data = {**mix, **{k: v for k, v in kept.get("data", {}).items() if k not in ("strategy", "datasets")}}
    raw = {**kept, "data": data}
    try:
        base = validate(raw)
    except UserError:
        base = RunConfig.model_validate(fresh)
    return WizardScreen(base, data_tokens=draft.est_tokens(), fit_on_mount=False, raw=raw, previews=previews)
