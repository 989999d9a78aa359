"""Preset wizard: model, level, hardware, editable hyperparameters, memory estimate, TOML."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch

from tui_trainer.config import RunConfig, dumps_config, save_config
from tui_trainer.errors import UserError
from tui_trainer.hardware import GIB
from tui_trainer.ui.config_form import FORM_FIELDS, FormField, format_value, get_value, parse_value, validate, with_value
from tui_trainer.ui.screens.modals import SavePathScreen

if TYPE_CHECKING:
    from tui_trainer.ui.app import TrainerApp

CUSTOM = "__custom__"
"""Select value meaning "the model path typed in the input"."""


def _field_id(field: FormField) -> str:
    return "f-" + field.key.replace(".", "-").replace("_", "-")


def _gib(n: int | float | None) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


class WizardScreen(Screen[None]):
    """Resolves a preset for this machine and the data, then lets every value be edited."""

    HELP = (
        "Choose a preset family (or type a local model path / hub id) and a level; the values "
        "are fitted to the detected hardware and the data size. Edit any value on the left; "
        "the TOML on the right is exactly what is saved (ctrl+s) or trained (ctrl+t)."
    )

    BINDINGS = [
        Binding("ctrl+t", "start", "Start training"),
        Binding("ctrl+s", "save", "Save config"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, base: RunConfig, *, data_tokens: int | None = None, fit_on_mount: bool = True) -> None:
        super().__init__()
        self.config: RunConfig | None = base
        """The current valid config (None while the form has an error)."""
        self._raw: dict[str, Any] = base.to_dict()
        self._data_tokens = data_tokens
        self._fit_on_mount = fit_on_mount
        self._hardware: Any = None
        self._fit: Any = None
        self._presets: dict[str, Any] = {}
        self._levels: tuple[str, ...] = ()
        self._loading = False

    @property
    def trainer(self) -> TrainerApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        services = self.trainer.services
        try:
            self._presets = dict(services.load_presets())
            self._levels = tuple(services.levels())
        except UserError as err:
            self.notify(str(err), severity="error")
        options = [(name, name) for name in self._presets] + [("local path / hub id", CUSTOM)]
        # A loaded config is shown as it is: starting on a preset would refit it on mount.
        first = next(iter(self._presets), CUSTOM) if self._fit_on_mount else CUSTOM
        level = "quality" if "quality" in self._levels else (self._levels[0] if self._levels else None)
        with Horizontal(id="wiz-top"):
            yield Select(options, value=first, allow_blank=False, id="preset")
            yield Select([(lv, lv) for lv in self._levels], value=level, allow_blank=level is None, id="level")
            yield Button("Start ▸", id="start", variant="success")
        with Horizontal(id="wiz-body"):
            with VerticalScroll(id="wiz-form"):
                with Horizontal(classes="form-row"):
                    yield Label("model", classes="form-label")
                    yield Input(self._raw["model"]["name_or_path"], id="f-model-name-or-path")
                for field in FORM_FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(field.label, classes="form-label")
                        yield self._make_input(field)
            with Vertical(id="wiz-side"):
                yield Static("", id="hardware")
                yield Static("", id="memory")
                with VerticalScroll(id="toml-box"):
                    yield Static("", id="toml-preview")
                    yield Static("", id="estimate-table")
        yield Static("", id="wiz-status")
        yield Footer()

    def _make_input(self, field: FormField):
        value = get_value(self._raw, field.key)
        if field.kind == "bool":
            return Switch(bool(value), id=_field_id(field))
        if field.kind == "choice":
            return Select([(c, c) for c in field.choices], value=value, allow_blank=False, id=_field_id(field))
        kind = {"int": "integer", "float": "number"}.get(field.kind, "text")
        return Input(format_value(value), id=_field_id(field), type=kind)

    def on_mount(self) -> None:
        self.query_one("#wiz-form").border_title = "hyperparameters"
        self.query_one("#toml-box").border_title = "config (TOML)"
        try:
            self._hardware = self.trainer.services.detect_hardware()
        except Exception as err:  # noqa: BLE001 - a broken driver still leaves the CPU path usable
            self.notify(f"Hardware detection failed: {err}", severity="warning")
        self._show_hardware()
        if not self._presets:
            self.query_one("#preset", Select).value = CUSTOM
        if self._fit_on_mount and self._presets:
            self._refit()
        else:
            self._refresh_outputs()

    # -- fitting ---------------------------------------------------------------------
    def _refit(self) -> None:
        preset = self.query_one("#preset", Select).value
        level = self.query_one("#level", Select).value
        if preset == CUSTOM or preset is Select.BLANK or level is Select.BLANK:
            self._refresh_outputs()
            return
        try:
            base = self.config or validate(self._raw)  # an invalid form value: shown, not a crash
            fit = self.trainer.services.fit_preset(str(preset), str(level), self._hardware, self._data_tokens, base)
        except UserError as err:
            self._show_status(str(err), ok=False)
            return
        self._fit = fit
        self._raw = fit.config.to_dict()
        self.config = fit.config
        self._load_form()
        self._refresh_outputs()

    def _load_form(self) -> None:
        self._loading = True
        try:
            self.query_one("#f-model-name-or-path", Input).value = self._raw["model"]["name_or_path"]
            for field in FORM_FIELDS:
                widget = self.query_one(f"#{_field_id(field)}")
                value = get_value(self._raw, field.key)
                if isinstance(widget, Input):
                    widget.value = format_value(value)
                else:
                    widget.value = value if field.kind == "choice" else bool(value)
        finally:
            self.call_after_refresh(self._done_loading)

    def _done_loading(self) -> None:
        self._loading = False

    @on(Select.Changed, "#preset, #level")
    def _choice_changed(self, event: Select.Changed) -> None:
        if not self._loading and self.is_mounted:
            self._refit()

    # -- editing ---------------------------------------------------------------------
    def _field_for(self, widget_id: str | None) -> FormField | None:
        return next((f for f in FORM_FIELDS if _field_id(f) == widget_id), None)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if self._loading:
            return
        if event.input.id == "f-model-name-or-path":
            self._apply("model.name_or_path", event.value.strip())
            return
        field = self._field_for(event.input.id)
        if field is None:
            return
        try:
            value = parse_value(field, event.value)
        except ValueError as err:
            self._invalid(str(err))
            return
        self._apply(field.key, value)

    @on(Switch.Changed)
    def _switch_changed(self, event: Switch.Changed) -> None:
        field = self._field_for(event.switch.id)
        if field is not None and not self._loading:
            self._apply(field.key, event.value)

    @on(Select.Changed)
    def _form_select_changed(self, event: Select.Changed) -> None:
        field = self._field_for(event.select.id)
        if field is not None and not self._loading:
            self._apply(field.key, event.value)

    def _apply(self, key: str, value: Any) -> None:
        self._raw = with_value(self._raw, key, value)
        self._refresh_outputs()

    def _invalid(self, message: str) -> None:
        self.config = None
        self._show_status(message, ok=False)

    def _refresh_outputs(self) -> None:
        try:
            self.config = validate(self._raw)
        except UserError as err:
            self._invalid(str(err))
            return
        self.query_one("#toml-preview", Static).update(Syntax(dumps_config(self.config), "toml", theme="ansi_dark", word_wrap=True))
        self._show_memory()
        notes = "; ".join(getattr(self._fit, "notes", ()) or ())
        self._show_status("✓ valid" + (f" — {notes}" if notes else ""), ok=True)

    # -- side panels -----------------------------------------------------------------
    def _show_hardware(self) -> None:
        hw = self._hardware
        box = self.query_one("#hardware", Static)
        if hw is None:
            box.update(Text("hardware: unknown", style="dim"))
            return
        text = Text()
        text.append("hardware  ", style="dim")
        if hw.kind == "cpu":
            text.append(f"CPU only: {hw.name}, {_gib(hw.total_bytes)} RAM")
        else:
            text.append(f"{hw.name}, {_gib(hw.free_bytes)} free of {_gib(hw.total_bytes)}")
            text.append(", bf16" if hw.bf16 else ", no bf16")
        box.update(text)

    def _current_estimate(self) -> Any:
        """The estimate for the values on screen: re-estimated after edits when the family is known."""
        fit = self._fit
        if fit is None or self.config is None:
            return None
        if fit.config == self.config or self.trainer.services.estimate is None:
            return fit.estimate
        preset = self.query_one("#preset", Select).value
        if preset == CUSTOM or self.config.model.name_or_path != fit.config.model.name_or_path:
            return None  # another model: the family's facts no longer apply
        try:
            return self.trainer.services.estimate(str(preset), self.config, self._hardware)
        except Exception:  # noqa: BLE001 - an estimate is advice; never block editing on it
            return None

    def _show_memory(self) -> None:
        box = self.query_one("#memory", Static)
        estimate = self._current_estimate()
        if estimate is None:
            box.update(Text("memory    no estimate (pick a preset family to get one)", style="dim"))
            self.query_one("#estimate-table", Static).update("")
            return
        need = estimate.total
        have = getattr(self._hardware, "free_bytes", None)
        text = Text()
        text.append("memory    ", style="dim")
        text.append(f"~{_gib(need)} peak")
        if have:
            ok = need <= have
            text.append(f" vs {_gib(have)} free: ")
            text.append("fits" if ok else "does NOT fit", style="green" if ok else "bold red")
        box.update(text)
        self.query_one("#estimate-table", Static).update(Text(estimate.format(), style="dim"))

    def _show_status(self, message: str, *, ok: bool) -> None:
        self.query_one("#wiz-status", Static).update(Text(message, style="green" if ok else "red"))
        self.query_one("#start", Button).disabled = not ok

    # -- actions ---------------------------------------------------------------------
    def action_start(self) -> None:
        if self.config is None:
            self.app.bell()
            return
        self.trainer.start_training(self.config)

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
