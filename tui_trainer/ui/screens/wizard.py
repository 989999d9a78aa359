"""Preset wizard: task, model, level, hardware, editable hyperparameters, memory estimate, plan, TOML.

Presets, the hardware probe, fitting, the base model's config and "measure this config" run
in worker threads; edits re-validate and recompute the mix plan on the UI thread (pure and
fast). A preset is applied only when the user picks one, and the status line names the
fields it changed. The form's rows live in ui/wizard_sections.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static, Switch

from tui_trainer.config.io import dumps_config, save_config
from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import UserError
from tui_trainer.ui import wizard_messages as wm
from tui_trainer.ui import wizard_sections as ws
from tui_trainer.ui import wizard_text as wt
from tui_trainer.ui.config_form import get_value, is_shown, parse_value, validate, with_task, with_value
from tui_trainer.ui.host import host
from tui_trainer.ui.messages import LaunchRun, StartSearch, StartTraining
from tui_trainer.ui.plan_preview import PlanPreview, estimated_rows, preview_plan
from tui_trainer.ui.screens.modals import SavePathScreen
from tui_trainer.ui.widgets import styles
from tui_trainer.ui.wizard_launch import default_processes, launches_in_process
from tui_trainer.ui.wizard_workers import WizardWorkers

CUSTOM = "__custom__"
"""Select value meaning "the model path typed in the input"."""
DEMOS = {"__demo_tiny__": ("demo: tiny Llama", wt.TINY_NOTE), "__demo_smollm2__": ("demo: SmolLM2-135M", wt.SMOLLM2_NOTE)}
"""Preset-select values that load a whole demo run -> (label, what the status line says of it)."""


class WizardScreen(WizardWorkers, Screen[None]):
    """Resolves a preset for this machine and the data, then lets every value be edited."""

    HELP = (
        "Pick the task (causal_lm, sae, classification): its own options show below the shared ones. "
        "Choose a preset family (or a demo, or type a local model path / hub id) and a level; the values "
        "are fitted to the detected hardware and the data size, and the status line says which "
        "fields the preset changed. Edit any value on the left; a problem shows at its field. The plan "
        "and the TOML on the right are exactly what is saved (ctrl+s) or trained (ctrl+t). 'detached' or "
        "more than one process starts the run in processes of its own, followed by the monitor "
        "(a detached run keeps training when the app quits). ctrl+b measures a few steps of this config."
    )

    DEFAULT_CSS = """
    WizardScreen .form-heading { height: 1; padding: 0 1; margin-top: 1; color: $accent; text-style: bold; }
    /* styles.ERROR: Textual's $error ring on a focused invalid input has a contrast of 2.7 */
    WizardScreen Input.-invalid, WizardScreen Input.-invalid:focus { border: tall #ff6b6b; border-subtitle-color: #ff6b6b; }
    """

    BINDINGS = [
        # One word each, so Back, Quit and Help stay on an 80-column footer; the tooltip is the long name.
        Binding("ctrl+t", "start", "Start", tooltip="Start training"),
        Binding("ctrl+s", "save", "Save", tooltip="Save the config as TOML"),
        Binding("ctrl+b", "measure", "Measure", tooltip="Measure s/step, tokens/s and peak memory"),
        Binding("ctrl+f", "search", "Search", tooltip="Search hyperparameters"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        base: RunConfig,
        *,
        data_tokens: int | None = None,
        fit_on_mount: bool = True,
        raw: dict[str, Any] | None = None,
        previews: list[Any] | None = None,
    ) -> None:
        super().__init__()
        self.config: RunConfig | None = base
        """The current valid config (None while the form has an error)."""
        self._raw: dict[str, Any] = raw if raw is not None else base.to_dict()
        self._data_tokens = data_tokens
        self._previews = previews
        self._fit_on_mount = fit_on_mount
        self._hardware: Any = None
        self._fit: Any = None
        self._presets: dict[str, Any] = {}
        self._levels: tuple[str, ...] = ()
        self._choice: tuple[Any, Any] = (CUSTOM, None)
        self._changed: list[str] = []
        self._fit_seq = 0
        self._note: str | None = None
        self._nproc_edited = False
        self._nproc_default = "1"
        self._sections: dict[str, Any] = {}
        self.plan: PlanPreview | None = None
        """The core's plan for the values on screen."""
        self.ready = False
        """True once presets and hardware are read (and the first fit, if any, applied)."""
        self.fits = 0
        """Fits applied so far (tests wait on it)."""
        self.shape: Any = None
        """The base model's ModelShape for the values on screen (sae); None while its read runs."""
        self._shape_key: str | None = None
        self.measured: tuple[str, Any] | None = None
        """(the TOML it measured, BenchFigures) of the last "measure this config"."""
        self.measuring = False
        """True while a measurement runs in its worker."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="wiz-top"):
            yield Select([("local path / hub id", CUSTOM)], value=CUSTOM, allow_blank=False, id="preset")
            yield Select([], prompt="level", id="level")
            yield Button("Start ▸", id="start", variant="success")
        with Horizontal(id="wiz-body"):
            with VerticalScroll(id="wiz-form"):
                yield from ws.compose_form(self._raw, processes=1)
            with Vertical(id="wiz-side"):
                yield Static(Text("hardware  detecting…", style="dim"), id="hardware")
                yield Static("", id="memory")
                with VerticalScroll(id="toml-box"):
                    yield Static("", id="plan")
                    yield Static("", id="toml-preview")
                    yield Static("", id="estimate-table")
        yield Static("", id="wiz-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#wiz-form").border_title = "task and hyperparameters"
        self.query_one("#toml-box").border_title = "plan and config (TOML)"
        ws.show_for(self, self._raw)
        self._refresh_outputs()
        self._read_setup()

    # -- setup and fitting (workers) -----------------------------------------------------
    def on_wizard_screen_setup_read(self, message: wm.SetupRead) -> None:
        for problem in message.problems:
            self.notify(problem, severity="warning")
        self._presets, self._levels, self._hardware = message.presets, message.levels, message.hardware
        self.query_one("#hardware", Static).update(wt.hardware_text(self._hardware))
        if not self._nproc_edited:
            self._nproc_default = str(default_processes(self._hardware))
            self.query_one(f"#{ws.NPROC_INPUT}", Input).value = self._nproc_default
        level = "quality" if "quality" in self._levels else (self._levels[0] if self._levels else None)
        first = next(iter(self._presets), CUSTOM) if self._fit_on_mount else CUSTOM
        self._choice = (first, level)
        preset_select, level_select = self.query_one("#preset", Select), self.query_one("#level", Select)
        demos = [(label, value) for value, (label, _) in DEMOS.items()]
        preset_select.set_options([(name, name) for name in self._presets] + demos + [("local path / hub id", CUSTOM)])
        preset_select.value = first
        level_select.set_options([(lv, lv) for lv in self._levels])
        if level is not None:
            level_select.value = level
        if first != CUSTOM and level is not None:
            self._start_fit(first, level)
        else:
            self.ready = True

    def _start_fit(self, preset: Any, level: Any) -> None:
        try:
            base = self.config or validate(self._raw)  # an invalid form value: shown, not a crash
        except UserError as err:
            self._invalid(str(err))
            self.ready = True
            return
        self._show_status(f"fitting {preset} ({level}) to this machine…", ok=True)
        self._fit_seq += 1
        self._fit_worker(self._fit_seq, str(preset), str(level), base)

    def on_wizard_screen_fitted(self, message: wm.Fitted) -> None:
        if message.seq != self._fit_seq:
            return  # the user picked another preset or level meanwhile
        self.ready = True
        if message.fit is None:
            self._show_status(message.problem or "the preset does not fit", ok=False)
            return
        self._fit = message.fit
        self._replace(message.fit.config.to_dict(), note=None)
        preset, level = self._choice
        if self._changed:
            self.notify(f"Preset {preset} ({level}) changed: " + ", ".join(self._changed), timeout=8)
        self.fits += 1

    def _replace(self, raw: dict[str, Any], *, note: str | None, list_changes: bool = True) -> None:
        """Load a whole config (a fitted preset, a demo, another task) into the form; the status
        names what a preset or demo changed."""
        before, self._raw = self._raw, raw
        self._changed, self._note = wt.changed_fields(before, raw) if list_changes else [], note
        self.post_message(self.Edited(self._raw))
        # The rows' Changed echoes are dropped where they are posted, not by a flag cleared after the
        # next refresh: a key pressed right after a fit landed was ignored under that flag.
        with self.prevent(Input.Changed, Switch.Changed, Select.Changed):
            ws.load_values(self, self._raw)
        ws.show_for(self, self._raw)
        self._refresh_outputs()

    @on(Select.Changed, "#preset, #level")
    def _choice_changed(self, event: Select.Changed) -> None:
        choice = (self.query_one("#preset", Select).value, self.query_one("#level", Select).value)
        if choice == self._choice or not self.is_mounted:
            return  # set by the program, not picked by the user
        self._choice = choice
        preset, level = choice
        self.query_one("#level", Select).disabled = preset in DEMOS
        if preset in DEMOS:
            self._load_demo(str(preset))
        elif preset in (CUSTOM, Select.BLANK) or level is Select.BLANK:
            self._refresh_outputs()
        else:
            self._start_fit(preset, level)

    def _load_demo(self, which: str) -> None:
        services, out = host(self).services, Path(get_value(self._raw, "run.output_dir") or "runs")
        try:
            cfg = services.smollm2_config(out) if which == "__demo_smollm2__" else services.demo_config(out)
        except UserError as err:
            self._invalid(str(err))
            return
        self._fit = None
        self._replace(cfg.to_dict(), note=DEMOS[which][1])

    # -- editing ---------------------------------------------------------------------
    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id == ws.NPROC_INPUT:
            self._nproc_edited = self._nproc_edited or event.value != self._nproc_default
            self._refresh_outputs()
            return
        if event.input.id == ws.MODEL_INPUT:
            self._apply("model.name_or_path", event.value.strip())
            return
        field = ws.field_for(event.input.id)
        if field is None or not is_shown(field, self._raw):
            return
        try:
            value = parse_value(field, event.value)
        except ValueError as err:
            self._invalid(str(err))
            return
        self._apply(field.key, value)

    @on(Switch.Changed)
    def _switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id == ws.DETACH_SWITCH:
            self._refresh_outputs()
            return
        field = ws.field_for(event.switch.id)
        if field is not None and is_shown(field, self._raw):
            self._apply(field.key, event.value)

    @on(Select.Changed)
    def _form_select_changed(self, event: Select.Changed) -> None:
        field = ws.field_for(event.select.id)
        # A hidden row's Select announces its first value when mounted: not an edit of this run.
        if field is not None and is_shown(field, self._raw):
            self._apply(field.key, event.value)

    def _apply(self, key: str, value: Any) -> None:
        if get_value(self._raw, key) == value and self.config is not None:
            return  # the form echoing a value the program set (a preset, a load)
        if key == "run.task":
            self._sections.update({name: self._raw[name] for name in ("sae", "classification") if name in self._raw})
            self._replace(with_task(self._raw, str(value), self._sections.get(str(value))), note=None, list_changes=False)
            if value in ("sae", "classification"):  # its own options, below the shared ones
                self.query_one(f"#head-{value}").scroll_visible(top=True, animate=False)
            return
        self._raw = with_value(self._raw, key, value)
        self._changed, self._note = [], None
        self.post_message(self.Edited(self._raw))
        ws.show_for(self, self._raw)
        self._refresh_outputs()

    def _invalid(self, message: str) -> None:
        self.config = None
        named = ws.mark_errors(self, message)
        if named:  # the field the message names, on screen (the form scrolls)
            self.query_one(f"#row-{ws.field_id(named[0])}").scroll_visible(animate=False)
        self._show_status(message, ok=False)

    def _refresh_outputs(self) -> None:
        try:
            self.config = validate(self._raw)
        except UserError as err:
            self._invalid(str(err))
            return
        ws.mark_errors(self, None)
        rows = estimated_rows(self.config, self._previews) if self._previews else None
        self.plan = preview_plan(self.config, rows)
        plan_text = Text(self.plan.text if self.plan and self.plan.text else "", style="cyan")
        self.query_one("#plan", Static).update(plan_text)
        self.query_one("#toml-preview", Static).update(Syntax(dumps_config(self.config), "toml", theme="ansi_dark", word_wrap=True))
        self._show_memory()
        if self.plan is not None and self.plan.problem:
            self._invalid(self.plan.problem)
            return
        nproc = ws.processes(self)
        self.query_one(f"#{ws.NPROC_INPUT}", Input).set_class(nproc is None, "-invalid")
        if nproc is None:
            self._show_status("processes: give a whole number of processes, 1 or more", ok=False)
            return
        if self._model_problem():
            return
        parts = [wt.run_length(self.plan, self.config)]
        if self._note:
            parts.append(self._note)
        if self._changed:
            parts.append("preset changed " + ", ".join(self._changed))
        parts += wt.fit_notes(self._fit)
        parts += wt.launch_note(ws.detached(self), nproc)
        self._show_status("✓ valid: " + "; ".join(parts), ok=True)

    # -- side panels -----------------------------------------------------------------
    def _current_estimate(self) -> Any:
        """The estimate for the values on screen: re-estimated after edits when the family is known."""
        fit = self._fit
        if fit is None or self.config is None:
            return None
        estimate = host(self).services.estimate
        if fit.config == self.config or estimate is None:
            return fit.estimate
        preset = self._choice[0]
        if preset == CUSTOM or self.config.model.name_or_path != fit.config.model.name_or_path:
            return None  # another model: the family's facts no longer apply
        try:
            return estimate(str(preset), self.config, self._hardware)
        except Exception:  # noqa: BLE001 - an estimate is advice; never block editing on it
            return None

    def _show_memory(self) -> None:
        estimate = self._current_estimate()
        measured = self._measured_text()
        self.query_one("#memory", Static).update(wt.memory_text(estimate, self._hardware, measured))
        self.query_one("#estimate-table", Static).update(Text(estimate.format(), style="dim") if estimate is not None else "")

    def _show_status(self, message: str, *, ok: bool) -> None:
        self.query_one("#wiz-status", Static).update(Text(message, style=styles.OK if ok else styles.ERROR))
        self.query_one("#start", Button).disabled = not ok

    # -- actions ---------------------------------------------------------------------
    def _startable(self) -> bool:
        if self.config is None or self.query_one("#start", Button).disabled:
            self.app.bell()
            return False
        return True

    def action_start(self) -> None:
        if self.measuring:  # two runs would share the machine: neither figure nor run would be what it seems
            self.notify("Measuring this config; start when the measurement is shown (a few steps).", severity="warning")
            return
        if not self._startable():
            return
        detach, nproc = ws.detached(self), ws.processes(self) or 1
        if launches_in_process(detach, nproc):
            self.post_message(StartTraining(self.config))
        else:
            self.post_message(LaunchRun(self.config, detach=detach, nproc=nproc))

    def action_search(self) -> None:
        if self._startable():  # the same readiness as training: the study's trial 0 is exactly this run
            self.post_message(StartSearch(self.config))

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_save(self) -> None:
        if self.config is None:
            self.app.bell()
            self.notify("Fix the highlighted problem before saving.", severity="error")
            return
        default = Path(f"{self.config.run.name}.toml")
        self.app.push_screen(SavePathScreen("Save the run config as", default), self._save_to)

    def _save_to(self, path: Path | None) -> None:
        if path is None or self.config is None:
            return
        try:
            save_config(self.config, path)
        except OSError as err:
            self.notify(f"Could not write {path}: {err.strerror}", severity="error")
            return
        self.notify(f"Saved {path}; train it headless with: tui-trainer train {path}")

    def action_back(self) -> None:
        self.app.pop_screen()
