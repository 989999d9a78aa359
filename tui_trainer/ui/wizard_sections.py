"""The wizard's form: one row per key of ui/config_form.py, the task's rows shown for its task,
each validation error at the field it names, and the launch options (detached, processes).

Every row is composed once and hidden when the config does not use its key, so switching
the task or the SAE architecture never rebuilds widgets (and focus stays where it was).
"""

from __future__ import annotations

import re
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from tui_trainer.ui.config_form import ALL_FIELDS, FormField, fields_in, format_value, get_value, is_shown

MODEL_INPUT = "f-model-name-or-path"
DETACH_SWITCH = "launch-detach"
NPROC_INPUT = "launch-nproc"
SECTION_TITLES = {"sae.layer": "sparse autoencoder", "classification.label_field": "classification"}
"""The first key of each task section -> the heading shown above it."""


def field_id(field: FormField) -> str:
    return "f-" + field.key.replace(".", "-").replace("_", "-")


def field_for(widget_id: str | None) -> FormField | None:
    return next((f for f in ALL_FIELDS if field_id(f) == widget_id), None)


def _make_input(field: FormField, raw: dict[str, Any]) -> Widget:
    value = get_value(raw, field.key)
    if field.kind == "bool":
        return Switch(bool(value), id=field_id(field))
    if field.kind == "choice":
        return Select([(c, c) for c in field.choices], value=value if value in field.choices else field.choices[0], allow_blank=False, id=field_id(field))
    kind = {"int": "integer", "float": "number"}.get(field.kind, "text")
    return Input(format_value(value), id=field_id(field), type=kind)


def _row(label: str, widget: Widget, row_id: str) -> Horizontal:
    return Horizontal(Label(label, classes="form-label", id="label-" + row_id), widget, classes="form-row", id=row_id)


def set_label(screen: Widget, field: FormField, text: str) -> None:
    """A row's label with what the form knows of its range, e.g. ``layer (of 4)``."""
    screen.query_one(f"#label-row-{field_id(field)}", Label).update(text)


def compose_form(raw: dict[str, Any], *, processes: int) -> ComposeResult:
    """The rows, in ALL_FIELDS order, with the model path after the task and the launch options last."""
    for field in ALL_FIELDS:
        if field.key in SECTION_TITLES:
            yield Static(SECTION_TITLES[field.key], classes="form-heading", id="head-" + field.key.split(".")[0])
        yield _row(field.label, _make_input(field, raw), "row-" + field_id(field))
        if field.key == "run.task":
            yield _row("model", Input(get_value(raw, "model.name_or_path") or "", id=MODEL_INPUT), "row-model")
    yield Static("launch", classes="form-heading", id="head-launch")
    yield _row("detached", Switch(False, id=DETACH_SWITCH), "row-detach")
    yield _row("processes", Input(str(processes), id=NPROC_INPUT, type="integer"), "row-nproc")


def processes(screen: Widget) -> int | None:
    """The launch's process count; None while the field holds no whole number >= 1."""
    try:
        n = int(screen.query_one(f"#{NPROC_INPUT}", Input).value)
    except ValueError:
        return None
    return n if n >= 1 else None


def detached(screen: Widget) -> bool:
    return bool(screen.query_one(f"#{DETACH_SWITCH}", Switch).value)


def load_values(screen: Widget, raw: dict[str, Any]) -> None:
    """Set every row from ``raw`` (the caller suppresses the Changed echoes)."""
    screen.query_one(f"#{MODEL_INPUT}", Input).value = get_value(raw, "model.name_or_path") or ""
    for field in ALL_FIELDS:
        value = get_value(raw, field.key)
        widget = screen.query_one(f"#{field_id(field)}")
        if isinstance(widget, Input):
            widget.value = format_value(value)
        elif isinstance(widget, Select):
            if value in field.choices:
                widget.value = value
        else:
            widget.value = bool(value)


def show_for(screen: Widget, raw: dict[str, Any]) -> None:
    """Only the rows (and task headings) the config uses."""
    for field in ALL_FIELDS:
        screen.query_one(f"#row-{field_id(field)}").display = is_shown(field, raw)
    task = get_value(raw, "run.task") or "causal_lm"
    for name in ("sae", "classification"):
        screen.query_one(f"#head-{name}").display = task == name


def mark_errors(screen: Widget, message: str | None) -> list[FormField]:
    """Flag the inputs ``message`` names (red border, the message on it); clears the others."""
    named = fields_in(message) if message else []
    for field in ALL_FIELDS:
        widget = screen.query_one(f"#{field_id(field)}")
        bad = field in named
        widget.set_class(bad, "-invalid")
        widget.border_subtitle = _short(message or "", field) if bad else None
    return named


def _short(message: str, field: FormField) -> str:
    """The line of ``message`` about ``field``, without what the field already says (its key,
    ``= value is``): "must be > 0, got 0", "beyond the model's 4 decoder layers; use 0..3"."""
    line = next((ln for ln in message.splitlines() if field.key in ln), message).removeprefix("wizard: ").strip()
    return re.sub(rf"^.*?{re.escape(field.key)}:?\s*(=\s*\S+\s*)?(is\s+)?", "", line, count=1) or line
