"""Set up a hyperparameter study from the wizard's config: which keys to search, their ranges,
the trial budget, sampler and pruner.

Every key the config can search is listed with a suggested range around its current value
(``search/suggest.py``); the highlighted key's range is edited on the right. Start checks the
space exactly as ``tui-trainer search`` will (``search/space.py`` ``build_space``: pure
validation, no disk) and returns the config with its ``[search]`` section, or shows the
problem and stays open.
"""

from __future__ import annotations

import tomllib
from typing import Any, get_args

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui_trainer.config.schema import RunConfig
from tui_trainer.config.search_section import ParamRange, SearchSection
from tui_trainer.errors import ConfigError
from tui_trainer.search.launch import DEFAULT_KEYS
from tui_trainer.search.space import current_value
from tui_trainer.search.suggest import default_objective, searchable_keys, suggested_range

SAMPLERS = get_args(SearchSection.model_fields["sampler"].annotation)
PRUNERS = get_args(SearchSection.model_fields["pruner"].annotation)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _choice(text: str) -> Any:
    """One comma-separated choice as TOML reads it (4 -> int, 0.1 -> float), else the bare word."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip().strip('"')


def parse_range(key: str, low: str, high: str, log: bool, choices: str) -> ParamRange:
    """The editor's fields as a range: ``choices`` when any are given, else ``low``..``high``."""
    where = f'search.space."{key}"'
    try:
        if choices.strip():
            return ParamRange(choices=[_choice(c) for c in choices.split(",") if c.strip()])
        return ParamRange(low=float(low), high=float(high), log=log)
    except ValueError as err:
        detail = err.errors()[0]["msg"].removeprefix("Value error, ") if hasattr(err, "errors") else "low and high must be numbers"
        raise ConfigError(f"{where}: {detail}") from None


class SearchSetupScreen(ModalScreen[RunConfig | None]):
    """Pick keys and ranges; returns the config with ``[search]`` filled, or None on cancel."""

    DEFAULT_CSS = """
    SearchSetupScreen { align: center middle; }
    /* Not the app's .dialog class: its width 70 (app CSS outranks DEFAULT_CSS) squeezed the key list. */
    #search-setup-dialog {
        width: 110; max-width: 95%; height: auto; max-height: 90%; overflow-y: auto;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    #setup-main { height: auto; }
    #search-keys { width: 3fr; height: auto; max-height: 14; }
    #range-editor { width: 2fr; height: auto; padding: 0 0 0 2; }
    .setup-row { height: auto; }
    .setup-row Label { width: 8; padding: 1 0 0 0; }
    .setup-row Input { width: 1fr; }
    #setup-options { height: auto; margin-top: 1; }
    .setup-option { width: 1fr; height: auto; }
    .setup-option Input, .setup-option Select { width: 100%; }
    #setup-problem { height: auto; color: $error; margin: 1 0 0 0; }
    """

    BINDINGS = [
        Binding("ctrl+s", "start", "Start study"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.keys = searchable_keys(cfg)
        self.fields: dict[str, dict[str, Any]] = {}
        """Per key, the editor's text as last typed (kept when another key is highlighted)."""
        for key in self.keys:
            spec = suggested_range(key, cfg)
            choices = ", ".join(str(c) for c in spec.choices) if spec.choices else ""
            self.fields[key] = {"low": _number(spec.low), "high": _number(spec.high), "log": spec.log, "choices": choices}
        self.editing: str | None = self.keys[0] if self.keys else None
        """The key whose range the editor holds."""
        self.shown: str | None = None
        """The key whose fields the editor's inputs show now (tests wait on it: filled after mount)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="search-setup-dialog"):
            yield Label("Search hyperparameters", classes="dialog-title")
            yield Static("Space picks the keys to search; the highlighted key's range is on the right. "
                         "Trial 0 runs this config as it is: the baseline the study must beat.", classes="dialog-text")
            with Horizontal(id="setup-main"):
                yield SelectionList[str](
                    *(Selection(f"{k}  (now {current_value(self.cfg, k)})", k, k in DEFAULT_KEYS) for k in self.keys),
                    id="search-keys",
                )
                with Vertical(id="range-editor"):
                    yield Static("", id="range-key")
                    for name, hint in (("low", "lower bound"), ("high", "upper bound")):
                        with Horizontal(classes="setup-row"):
                            yield Label(name)
                            yield Input(placeholder=hint, id=f"range-{name}")
                    yield Checkbox("log scale", id="range-log")
                    with Horizontal(classes="setup-row"):
                        yield Label("choices")
                        yield Input(placeholder="4, 8, 16 (instead of a range)", id="range-choices")
            with Horizontal(id="setup-options"):
                with Vertical(classes="setup-option"):
                    yield Label("trials")
                    yield Input(str(SearchSection().trials), type="integer", id="setup-trials")
                with Vertical(classes="setup-option"):
                    yield Label("sampler")
                    yield Select([(x, x) for x in SAMPLERS], value="tpe", allow_blank=False, id="setup-sampler")
                with Vertical(classes="setup-option"):
                    yield Label("pruner")
                    yield Select([(x, x) for x in PRUNERS], value="median", allow_blank=False, id="setup-pruner")
                with Vertical(classes="setup-option"):
                    yield Label("objective (an eval metric)")
                    yield Input(default_objective(self.cfg), id="setup-objective")
            yield Static("", id="setup-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start study", variant="primary", id="start-search")
                yield Button("Cancel", id="cancel-search")
        yield Footer()

    def on_mount(self) -> None:
        self._show(self.editing)
        self.query_one("#search-keys", SelectionList).focus()

    # -- the range editor ------------------------------------------------------------
    def _show(self, key: str | None) -> None:
        """Fill the editor with ``key``'s fields."""
        self.editing = key
        if key is None:
            return
        f = self.fields[key]
        self.query_one("#range-key", Static).update(f"range of {key}")
        with self.prevent(Input.Changed, Checkbox.Changed):  # a fill is not an edit of the key now shown
            self.query_one("#range-low", Input).value = f["low"]
            self.query_one("#range-high", Input).value = f["high"]
            self.query_one("#range-log", Checkbox).value = f["log"]
            self.query_one("#range-choices", Input).value = f["choices"]
        self.shown = key

    @on(SelectionList.SelectionHighlighted, "#search-keys")
    def _highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        self._show(event.selection.value)

    @on(Input.Changed, "#range-editor Input")
    def _range_typed(self, event: Input.Changed) -> None:
        if self.editing is not None:
            self.fields[self.editing][str(event.input.id).removeprefix("range-")] = event.value

    @on(Checkbox.Changed, "#range-log")
    def _log_toggled(self, event: Checkbox.Changed) -> None:
        if self.editing is not None:
            self.fields[self.editing]["log"] = event.value

    # -- start -----------------------------------------------------------------------
    def build(self) -> RunConfig:
        """The config with the ``[search]`` section the fields describe (ConfigError naming the field if not)."""
        from tui_trainer.config.schema import config_from_dict
        from tui_trainer.search.space import build_space, grid

        keys = list(self.query_one("#search-keys", SelectionList).selected)
        if not keys:
            raise ConfigError("search.space: pick at least one key to search (space toggles a key)")
        space = {k: parse_range(k, **self.fields[k]) for k in keys}
        trials_text = self.query_one("#setup-trials", Input).value.strip()
        if not trials_text.isdigit() or int(trials_text) < 1:
            raise ConfigError(f"search.trials = {trials_text!r}: give a whole number of trials, at least 1")
        objective = self.query_one("#setup-objective", Input).value.strip() or "eval_loss"
        raw = self.cfg.to_dict()
        raw["search"] = {
            "trials": int(trials_text),
            "sampler": self.query_one("#setup-sampler", Select).value,
            "pruner": self.query_one("#setup-pruner", Select).value,
            "objective": objective,
            "direction": "minimize" if objective in ("eval_loss", "mse") else "maximize",
            "space": {k: r.model_dump(exclude_none=True, exclude_defaults=True) for k, r in space.items()},
        }
        cfg = config_from_dict(raw, "search set-up")
        params = build_space(raw, cfg)  # every key set at both ends of its range, as the study will
        if cfg.search.sampler == "grid":
            grid(params)  # a float range without a step has no grid: say so here, not after the launch
        return cfg

    def action_start(self) -> None:
        try:
            cfg = self.build()
        except ConfigError as err:
            self.query_one("#setup-problem", Static).update(str(err))
            self.app.bell()
            return
        self.dismiss(cfg)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#start-search")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#cancel-search")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
