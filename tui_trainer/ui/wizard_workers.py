"""The preset wizard's worker threads and what their answers do: setup, fitting, the base
model's config (sae), and "measure this config". Disk, model and engine work never runs on
the UI thread; each answer is a message (ui/wizard_messages.py) handled on it.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import work

from tui_trainer.config.io import dumps_config
from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import UserError
from tui_trainer.ui import wizard_messages as wm
from tui_trainer.ui import wizard_sections as ws
from tui_trainer.ui import wizard_text as wt
from tui_trainer.ui.config_form import ALL_FIELDS, get_value, task_of
from tui_trainer.ui.host import host


BY_KEY = {f.key: f for f in ALL_FIELDS}


class WizardWorkers:
    """Mixed into WizardScreen (which owns the state these read and the panels they refresh)."""

    SetupRead, Fitted, Edited, ModelRead, Measured = wm.SetupRead, wm.Fitted, wm.Edited, wm.ModelRead, wm.Measured

    @work(thread=True, group="wizard-setup")
    def _read_setup(self) -> None:
        services, problems = host(self).services, []
        presets: dict[str, Any] = {}
        levels: tuple[str, ...] = ()
        try:
            presets, levels = dict(services.load_presets()), tuple(services.levels())
        except UserError as err:
            problems.append(str(err))
        try:
            hardware = services.detect_hardware()
        except Exception as err:  # noqa: BLE001 - a broken driver still leaves the CPU path usable
            hardware = None
            problems.append(f"Hardware detection failed: {err}")
        self.post_message(self.SetupRead(presets, levels, hardware, problems))

    @work(thread=True, group="wizard-fit")
    def _fit_worker(self, seq: int, preset: str, level: str, base: RunConfig) -> None:
        try:
            fit = host(self).services.fit_preset(preset, level, self._hardware, self._data_tokens, base)
        except UserError as err:
            self.post_message(self.Fitted(seq, None, str(err)))
            return
        self.post_message(self.Fitted(seq, fit, None))

    # -- the base model (sae) --
    def _model_key(self) -> str:
        raw = self._raw
        return json.dumps([get_value(raw, "model.name_or_path"), task_of(raw), raw.get("sae")], sort_keys=True)

    def _model_problem(self) -> bool:
        """Shows the sae task's refusal of the base model or the layer; True when there is one."""
        if self.config is None or self.config.run.task != "sae":
            return False
        key = self._model_key()
        if key != self._shape_key:
            self._shape_key, self.shape = key, None
            ws.set_label(self, BY_KEY["sae.layer"], wt.layer_label(None))
            self._read_model(key, self.config)
            return False
        if self.shape is not None and self.shape.problem:
            self._invalid(self.shape.problem)
            return True
        return False

    @work(thread=True, exclusive=True, group="wizard-model")
    def _read_model(self, key: str, cfg: RunConfig) -> None:
        self.post_message(self.ModelRead(key, host(self).services.model_shape(cfg)))

    def on_wizard_screen_model_read(self, message: wm.ModelRead) -> None:
        if message.key != self._shape_key:
            return  # the values changed meanwhile; a newer read is on its way
        self.shape = message.shape
        ws.set_label(self, BY_KEY["sae.layer"], wt.layer_label(self.shape))
        self._refresh_outputs()

    # -- measure this config --
    def action_measure(self) -> None:
        if self.measuring or not self._startable():
            return
        self.measuring = True
        self._show_memory()
        self._measure(self.config)

    @work(thread=True, exclusive=True, group="wizard-measure")
    def _measure(self, cfg: RunConfig) -> None:
        key = dumps_config(cfg)
        try:
            figures, problem = host(self).services.measure(cfg), None
        except UserError as err:
            figures, problem = None, str(err)
        except Exception as err:  # noqa: BLE001 - a measurement is advice: its failure is shown, the app stays
            figures, problem = None, f"{type(err).__name__}: {err}"
        self.post_message(self.Measured(key, figures, problem))

    def on_wizard_screen_measured(self, message: wm.Measured) -> None:
        self.measuring = False
        if message.figures is None:
            self.notify(f"Measuring failed: {message.problem}", severity="error", timeout=10)
        else:
            self.measured = (message.key, message.figures)
        self._show_memory()

    def _measured_text(self) -> Text | None:
        if self.measuring:
            return Text("measured  measuring a few steps of this config…", style="dim")
        if self.measured is None:
            return None
        key, figures = self.measured
        return wt.measured_text(figures, stale=self.config is None or key != dumps_config(self.config))
