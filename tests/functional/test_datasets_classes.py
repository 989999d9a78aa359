"""The datasets screen of a classification run: bars of rows per class, the imbalance, what the cap keeps
(issue 15 item 7). The inspection runs in a worker thread; the test holds it and waits on explicit state."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image
from textual.widgets import DataTable, Static

from tests.functional.fakes import fake_preview, make_services
from tests.functional.helpers import home_read, static_text, wait_until
from tui_trainer.config.schema import config_from_dict
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.mix_draft import MixDraft
from tui_trainer.ui.screens.datasets import DatasetsScreen

PER_CLASS = {"happy": 8, "sad": 4, "disgust": 2}


def _faces(root: Path) -> Path:
    for label, n in PER_CLASS.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (8, 8), 30 * i).save(root / label / f"{i}.png")
    return root


def _app(tmp_path: Path, services, **classification) -> TrainerApp:
    app = TrainerApp(services=services, output_dir=tmp_path / "runs", browse_root=tmp_path)
    app.classification = classification
    return app


async def _open_datasets(pilot, app) -> DatasetsScreen:
    """The datasets screen with a classification run's settings (as the wizard hands them back)."""
    await home_read(pilot, app)
    cfg = config_from_dict(
        {"run": {"task": "classification"}, "data": {"eval_fraction": 0.25}, "classification": app.classification}
    )
    await app.push_screen(DatasetsScreen(MixDraft(), browse_root=app.browse_root, settings=cfg.to_dict()))
    await wait_until(pilot, lambda: isinstance(app.screen, DatasetsScreen))
    return app.screen


async def test_class_bars_imbalance_and_what_the_cap_keeps(tmp_path: Path) -> None:
    folder = _faces(tmp_path / "faces")
    services = make_services(tmp_path)
    real, gate = services.inspect_classes, threading.Event()

    def held(*args):
        assert gate.wait(10), "the test never released the inspection"
        return real(*args)

    services.inspect_classes = held
    app = _app(tmp_path, services, max_samples_per_class=3)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_datasets(pilot, app)
        screen.add_dataset(str(folder))
        entry = screen.draft.datasets[0]
        await pilot.pause()
        assert not entry.inspected
        assert "reading" in static_text(screen.query_one("#preview", Static))
        gate.set()
        await wait_until(pilot, lambda: entry.inspected)
        await pilot.pause()
        assert entry.problem is None
        text = static_text(screen.query_one("#preview", Static))
        # 2 / 4 / 8 rows; a quarter held out per class (at least one): 1 / 3 / 6 training rows, capped at 3.
        assert "3 classes · imbalance 4.0:1" in text
        lines = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in PER_CLASS}
        assert lines["happy"].rstrip().endswith("6 → 3")
        assert lines["sad"].rstrip().endswith("3 → 3") and lines["disgust"].rstrip().endswith("1 → 1")
        # The bars are proportional to the training rows: happy's is twice sad's, solid up to the cap.
        happy = lines["happy"].count("█") + lines["happy"].count("▒")
        assert abs(happy - 2 * lines["sad"].count("█")) <= 1  # rounded to whole cells
        assert lines["happy"].count("█") == lines["sad"].count("█")
        assert "cap 3 per class keeps 7 of 10 training rows; imbalance 3.0:1 after the cap" in text
        row = screen.query_one("#datasets", DataTable).get_row_at(0)
        assert str(row[1]) == "image folder" and str(row[2]) == "3 classes" and str(row[3]) == "14"


async def test_without_a_cap_it_says_every_row_is_used_and_a_bad_label_is_named(tmp_path: Path) -> None:
    folder = _faces(tmp_path / "faces")
    (tmp_path / "labels.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    app = _app(tmp_path, make_services(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_datasets(pilot, app)
        screen.add_dataset(str(folder))
        screen.add_dataset(str(tmp_path / "labels.jsonl"))
        await wait_until(pilot, lambda: all(d.inspected for d in screen.draft.datasets))
        await pilot.pause()
        table = screen.query_one("#datasets", DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        text = static_text(screen.query_one("#preview", Static))
        assert "no cap: all 10 training rows are used" in text
        assert "labels.jsonl:2: record has no label in field 'label'" in screen.draft.datasets[1].problem


async def test_back_from_the_wizard_a_classification_task_reinspects_the_datasets(tmp_path: Path) -> None:
    """Text records with labels show no classes in a causal_lm run; once the wizard makes the run a
    classification run with a cap, going back to the datasets screen inspects them again as classes."""
    from textual.screen import Screen

    rows = [{"text": f"t{i}", "label": "ab"[i % 3 == 0]} for i in range(12)]  # 8 a, 4 b
    (tmp_path / "d.jsonl").write_text("".join(f'{{"text": "{r["text"]}", "label": "{r["label"]}"}}\n' for r in rows))
    services = make_services(tmp_path)
    services.inspect_dataset = lambda spec: fake_preview(spec)
    app = TrainerApp(services=services, output_dir=tmp_path / "runs", browse_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await home_read(pilot, app)
        await app.push_screen(DatasetsScreen(MixDraft(), browse_root=tmp_path, settings=None))
        screen = app.screen
        screen.add_dataset(str(tmp_path / "d.jsonl"))
        entry = screen.draft.datasets[0]
        await wait_until(pilot, lambda: entry.inspected)
        assert getattr(entry.preview, "classes", None) is None
        # The wizard's edits, as the app keeps them (WizardScreen.Edited), then Esc back to this screen.
        app.wizard_raw = config_from_dict(
            {"run": {"task": "classification"}, "data": {"eval_fraction": 0.25}, "classification": {"max_samples_per_class": 2}}
        ).to_dict()
        await app.push_screen(Screen())
        await pilot.pause()
        app.pop_screen()
        await wait_until(pilot, lambda: app.screen is screen and getattr(entry.preview, "classes", None) is not None)
        await pilot.pause()
        text = static_text(screen.query_one("#preview", Static))
        assert "2 classes · imbalance 2.0:1" in text
        assert "cap 2 per class keeps 4 of 9 training rows" in text


async def test_a_classification_run_offers_the_labeled_demos(tmp_path: Path) -> None:
    from textual.widgets import Button, Select

    from tui_trainer.demo.digits import IMBALANCED_COUNTS

    app = _app(tmp_path, make_services(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_datasets(pilot, app)
        select = screen.query_one("#demo-select", Select)
        # The text corpora have no labels: a classification run offers its own demos instead.
        assert select.display and not any(b.display for b in screen.query(".demo-button").results(Button))
        select.value = "demo:digits-imbalanced"
        await wait_until(pilot, lambda: screen.draft.datasets and screen.draft.datasets[0].inspected)
        await pilot.pause()
        entry = screen.draft.datasets[0]
        assert entry.path == "demo:digits-imbalanced" and entry.problem is None
        assert select.is_blank()  # back to the prompt for the next pick
        ratio = max(IMBALANCED_COUNTS) / min(IMBALANCED_COUNTS)
        assert f"10 classes · imbalance {ratio:.1f}:1" in static_text(screen.query_one("#preview", Static))
