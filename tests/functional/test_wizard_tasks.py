"""The wizard's task options: SAE and classification rows, each error at its field, the summary per task."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from textual.widgets import Button, Input, Label, Select, Static

from tests.functional.fakes import make_services
from tests.functional.helpers import static_text, wait_until
from tui_trainer.config.schema import config_from_dict
from tui_trainer.planning.hardware import GIB
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.wizard import WizardScreen
from tui_trainer.ui.wizard_model import ModelShape

BASE = {"data": {"datasets": [{"name": "code", "path": "demo:python-code"}]}, "train": {"max_steps": 40, "eval_every": 10}}


def four_layers(cfg) -> ModelShape:
    """A base model of 4 layers and width 64, refusing what the sae task refuses."""
    problem = None
    if cfg.sae.layer >= 4:
        problem = f"sae.layer = {cfg.sae.layer} is beyond the model's 4 decoder layers; use 0..3"
    return ModelShape(cfg.model.name_or_path, 4, 64, problem)


def estimate_of_task(preset, cfg, hardware):
    """services.estimate: names the task it was asked for (planning's estimate is per task)."""
    return SimpleNamespace(total=int(1.25 * GIB), format=lambda: f"Memory estimate ({cfg.run.task}) for {preset}")


def _app(tmp_path: Path) -> TrainerApp:
    services = make_services(tmp_path)
    services.model_shape = four_layers
    services.estimate = estimate_of_task
    return TrainerApp(services=services, output_dir=tmp_path / "runs")


async def _wizard(pilot, app, *, fit: bool = False) -> WizardScreen:
    app.push_screen(WizardScreen(config_from_dict(BASE), fit_on_mount=fit))
    await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready and (app.screen.fits or not fit))
    return app.screen


async def _set(pilot, wiz: WizardScreen, selector: str, value) -> None:
    widget = wiz.query_one(selector)
    widget.value = value  # one Changed, as after the user's last keystroke or pick
    await pilot.pause()


async def _model_read(pilot, wiz: WizardScreen) -> None:
    """Until the worker's read for the values on screen has answered (a new edit clears ``shape``)."""
    await wait_until(pilot, lambda: wiz.shape is not None)
    await pilot.pause()


def _status(wiz: WizardScreen) -> str:
    return static_text(wiz.query_one("#wiz-status", Static), width=400)


def _shown(wiz: WizardScreen, row: str) -> bool:
    return wiz.query_one(f"#row-{row}").display


async def test_sae_options_layer_count_and_errors_at_the_field(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app, fit=True)  # a preset family: the memory estimate is known
        assert not _shown(wiz, "f-sae-layer") and _shown(wiz, "f-lora-enabled")
        await _set(pilot, wiz, "#f-run-task", "sae")
        await _model_read(pilot, wiz)  # the model's config is read in a worker
        assert 'task = "sae"' in static_text(wiz.query_one("#toml-preview", Static))
        assert _shown(wiz, "f-sae-layer") and _shown(wiz, "f-sae-k") and not _shown(wiz, "f-sae-l1-coefficient")
        assert not _shown(wiz, "f-lora-enabled")  # the base is frozen: nothing of LoRA applies
        layer = wiz.query_one("#f-sae-layer", Input)
        assert str(wiz.query_one("#label-row-f-sae-layer", Label).content) == "layer (of 4)"
        # the default layer (6) is past this model's 4: refused at the field, Start disabled
        assert "beyond the model's 4 decoder layers" in _status(wiz)
        assert layer.has_class("-invalid") and "use 0..3" in str(layer.border_subtitle)
        assert wiz.query_one("#start", Button).disabled
        await _set(pilot, wiz, "#f-sae-layer", "2")
        await _model_read(pilot, wiz)
        assert _status(wiz).startswith("✓ valid") and not layer.has_class("-invalid")
        assert wiz.config.run.task == "sae" and wiz.config.sae.layer == 2 and "layer = 2" in static_text(wiz.query_one("#toml-preview", Static))
        # k belongs to topk, the L1 coefficient to the standard architecture
        await _set(pilot, wiz, "#f-sae-k", "0")
        k = wiz.query_one("#f-sae-k", Input)
        assert "sae.k must be > 0" in _status(wiz) and k.has_class("-invalid") and wiz.config is None
        await _set(pilot, wiz, "#f-sae-k", "16")
        await _set(pilot, wiz, "#f-sae-architecture", "standard")
        await _model_read(pilot, wiz)
        assert not _shown(wiz, "f-sae-k") and _shown(wiz, "f-sae-l1-coefficient")
        await _set(pilot, wiz, "#f-sae-l1-coefficient", "2.5")
        await _set(pilot, wiz, "#f-sae-expansion-factor", "4")
        await _set(pilot, wiz, "#f-sae-site", "mlp_out")
        await _model_read(pilot, wiz)
        sae = wiz.config.sae
        assert (sae.architecture, sae.l1_coefficient, sae.expansion_factor, sae.site, sae.k) == ("standard", 2.5, 4, "mlp_out", 16)
        # the summary keeps working for the task, and the memory estimate is planning's for the sae task
        assert "500 optimizer steps" in _status(wiz) and "evaluation every 10" in _status(wiz)
        assert "~1.2 GiB peak vs 78.0 GiB free: fits" in static_text(wiz.query_one("#memory", Static), width=200)
        assert "Memory estimate (sae) for tiny-llama" in static_text(wiz.query_one("#estimate-table", Static))


async def test_classification_options_and_switching_back(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app)
        await _set(pilot, wiz, "#f-run-task", "classification")
        assert wiz.config.run.task == "classification" and wiz.config.classification is not None
        assert _shown(wiz, "f-classification-label-field") and not _shown(wiz, "f-classification-focal-gamma")
        assert not _shown(wiz, "f-sae-layer")
        await _set(pilot, wiz, "#f-classification-label-field", "emotion")
        await _set(pilot, wiz, "#f-classification-class-weighting", "balanced")
        await _set(pilot, wiz, "#f-classification-loss", "focal")
        assert _shown(wiz, "f-classification-focal-gamma")
        await _set(pilot, wiz, "#f-classification-focal-gamma", "-1")
        gamma = wiz.query_one("#f-classification-focal-gamma", Input)
        assert "classification.focal_gamma must be >= 0" in _status(wiz) and gamma.has_class("-invalid")
        assert wiz.query_one("#start", Button).disabled
        await _set(pilot, wiz, "#f-classification-focal-gamma", "1.5")
        await _set(pilot, wiz, "#f-classification-max-samples-per-class", "100")
        c = wiz.config.classification
        assert (c.label_field, c.class_weighting, c.loss, c.focal_gamma, c.max_samples_per_class) == ("emotion", "balanced", "focal", 1.5, 100)
        assert _status(wiz).startswith("✓ valid: 40 optimizer steps")
        # back to causal_lm: the [classification] section goes (the schema refuses it with another task) ...
        await _set(pilot, wiz, "#f-run-task", "causal_lm")
        assert wiz.config.run.task == "causal_lm" and wiz.config.classification is None
        assert "[classification]" not in static_text(wiz.query_one("#toml-preview", Static))
        # ... and comes back as the user left it
        await _set(pilot, wiz, "#f-run-task", "classification")
        assert wiz.config.classification.label_field == "emotion" and wiz.config.classification.focal_gamma == 1.5
        assert wiz.query_one("#f-classification-label-field", Input).value == "emotion"
        assert wiz.query_one("#f-run-task", Select).value == "classification"
