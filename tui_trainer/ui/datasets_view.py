"""What the datasets screen shows, as plain functions (no widgets): columns by width, labels, the preview text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text

from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.schema import DataSection, DatasetSpec, RunSection
from tui_trainer.tasks.classification.images import is_image_folder
from tui_trainer.ui.mix_view import class_distribution, join_shares
from tui_trainer.ui.widgets import styles

COLUMNS = ("name", "format", "shape", "rows", "tokens", "mix")
NARROW_COLUMNS = ("name", "shape", "rows", "mix")
"""At 80 columns the table shows these; format and tokens move to the preview's summary line."""


def table_width(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> int:
    """Cells a table of ``columns`` needs for ``rows``: each column's widest cell or header, plus its padding.

    The format column's "reading…" is counted too: a column keeps the width of what it showed first.
    """
    placeholder = {"format": len("reading…")}
    return sum(max(len(c), placeholder.get(c, 0), *(len(str(r[c])) for r in rows)) + 2 for c in columns)


def demo_labels(names: list[str], room: int) -> list[str]:
    """The demo buttons' labels: full names when they fit in ``room`` cells, else without their shared prefix."""
    fits = room >= sum(len(n) + 4 for n in names)  # a button's border and padding take 4 cells
    return names if fits else short_demo_labels(names)


def table_cells(entry: Any, mix: str) -> dict[str, Any]:
    """One dataset's row of the table, by column name (ui.mix_draft.DraftDataset; ``mix`` as the strategy shows it)."""
    p = entry.preview
    if entry.problem:
        fmt, shape, rows, tokens = Text("error", style=styles.ERROR), "", "", ""
    elif p is None:
        fmt, shape, rows, tokens = Text("reading…", style="dim"), "", "", ""
    else:
        classes = getattr(p, "classes", None)
        shape = f"{len(classes.labels)} classes" if classes else p.shape.kind
        fmt, rows, tokens = p.format, f"{p.rows:,}", f"{p.est_tokens:,}" if p.est_tokens else "–"
    return {"name": entry.name, "format": fmt, "shape": shape, "rows": rows, "tokens": tokens, "mix": mix}


def short_demo_labels(names: list[str]) -> list[str]:
    """The demo corpora's names without the prefix they share (python-code, python-docs -> code, docs)."""
    head = names[0].split("-", 1)[0] + "-" if names and "-" in names[0] else ""
    if len(names) < 2 or not head or not all(n.startswith(head) for n in names):
        return names
    return [n.removeprefix(head) for n in names]


def int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


def class_settings(settings: dict[str, Any] | None, data_base: dict[str, Any]) -> tuple[ClassificationSection, float, int] | None:
    """(section, eval_fraction, seed) when the run's settings make it a classification run, else None."""
    raw = settings or {}
    if raw.get("run", {}).get("task") != "classification":
        return None
    data = {**data_base, **raw.get("data", {})}
    return (
        ClassificationSection.model_validate(raw.get("classification") or {}),
        float(data.get("eval_fraction", DataSection.model_fields["eval_fraction"].default)),
        int(raw.get("run", {}).get("seed", RunSection.model_fields["seed"].default)),
    )


def default_class_settings() -> tuple[ClassificationSection, float, int]:
    """A folder of class subfolders before the run's task is chosen: the defaults of every key."""
    return ClassificationSection(), DataSection.model_fields["eval_fraction"].default, RunSection.model_fields["seed"].default


def inspect_entry(services: Any, entry: Any, classes: tuple[ClassificationSection, float, int] | None) -> Any:
    """The preview of one dataset (blocking: the screen calls it in a worker); a bad one raises its DataError."""
    spec = DatasetSpec(name=entry.name, path=entry.path, **entry.extra)
    if classes is None and not entry.path.startswith("demo:") and is_image_folder(Path(entry.path)):
        # A folder of class subfolders is a classification dataset whatever the run's task is yet.
        classes = default_class_settings()
    if classes is not None:
        return services.inspect_classes(spec, *classes)
    return services.inspect_dataset(spec)


def mix_cell(strategy: str, plan: Any, i: int, d: Any, shares: dict[str, float]) -> str:
    """The table's mix column: the sequential range, the curriculum phase and share, or the overall share."""
    if strategy == "sequential":
        return f"{'?' if d.start_step is None else d.start_step}–{'?' if d.end_step is None else d.end_step}"
    if strategy == "curriculum":
        # The share in the phase it joins: later phases dilute it (the phase table has them all).
        phase, share = join_shares(plan).get(d.name, (i, 0.0))
        return f"phase {phase}: {share * 100:.0f}%"
    return f"{shares.get(d.name, 0) * 100:.1f}%"


def preview_text(entry: Any, width: int) -> Text:
    """An inspected dataset (ui.mix_draft.DraftDataset with a preview): path, summary, classes, first records."""
    p = entry.preview
    text = Text()
    text.append(f"{entry.path}\n", style="bold")
    fields = ", ".join(p.fields) if p.fields else "–"
    tokens = f" · ~{p.est_tokens:,} tokens" if p.est_tokens else ""
    text.append(f"{p.format} · {p.shape.kind} · {p.rows:,} rows{tokens} · fields: {fields}\n", style="dim")
    classes = getattr(p, "classes", None)
    if classes is not None:
        text.append_text(class_distribution(classes, width))
        text.append("\n")
    for record in p.preview:
        text.append(" ".join(str(record).split())[:300] + "\n")
    return text


def validation_status(draft: Any, plan: Any, plan_known: bool) -> tuple[Text, bool]:
    """The status line (the core's verdict on the mix) and whether Next may be pressed."""
    problem = draft.validate()
    pending = [d.name for d in draft.datasets if not d.inspected]
    if problem:
        return Text(problem, style=styles.ERROR), False
    if pending:
        return Text(f"reading {', '.join(pending)} …", style="dim"), True
    tokens = draft.est_tokens()
    extra = f", ~{tokens:,} tokens" if tokens else ""
    if plan is not None and plan_known:
        extra += f", a run of {plan.total_steps:,} steps"
        if plan.problem:
            return Text(plan.problem, style=styles.WARNING), True
    return Text(f"✓ {len(draft.datasets)} dataset(s), {draft.strategy}{extra}", style=styles.OK), True
