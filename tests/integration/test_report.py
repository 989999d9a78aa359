"""report.html for finished, stopped and compared runs (rendered in headless Chromium), and TensorBoard files."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import numpy as np
import pytest

from tests.integration.conftest import demo_cfg
from tui_trainer.analytics.report_html import write_run_report
from tui_trainer.api import train
from tui_trainer.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short runs: a clean one, and one with a loss spike and TensorBoard on."""
    root = tmp_path_factory.mktemp("report")
    clean = train(demo_cfg(root / "clean", max_steps=6, eval_every=3))
    cfg = demo_cfg(root / "spiky", max_steps=12, eval_every=6)
    cfg = cfg.model_copy(update={"analytics": cfg.analytics.model_copy(update={"spike_window": 8, "tensorboard": True})})
    spiky = train(cfg, faults="spike@9")
    return clean, spiky


def test_a_finished_run_writes_report_html_with_its_plots(runs):
    clean, _ = runs
    html = (clean.run_dir / "report.html").read_text()
    assert html.count("<svg") >= 4  # loss, learning rate, grad norm, tokens/s (+ the data mix)
    for text in ("training loss", "learning rate", "gradient norm", "tokens / s", "No findings", "[train]", "step-00000006"):
        assert text in html, text
    # Self-contained: nothing is fetched (namespace URIs inside the SVGs are names, not loads).
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_findings_appear_with_their_recommendation(runs):
    _, spiky = runs
    html = (spiky.run_dir / "report.html").read_text()
    assert "loss spike at step 10" in html and "lower train.lr to 1e-03" in html


def test_tensorboard_round_trip(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, spiky = runs
    acc = EventAccumulator(str(spiky.run_dir / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "train/lr", "train/grad_norm", "eval/loss", "eval/loss/code"} <= set(tags)
    losses = acc.Scalars("train/loss")
    assert [s.step for s in losses] == list(range(1, 13))
    assert losses[9].value > 10 * losses[8].value  # the injected spike, as the run logged it
    assert [s.step for s in acc.Scalars("eval/loss")] == [6, 12]


def test_report_command_compares_runs(runs, tmp_path, capsys):
    clean, spiky = runs
    out = tmp_path / "both.html"
    started = time.perf_counter()
    assert main(["report", str(clean.run_dir), str(spiky.run_dir), "--out", str(out)]) == 0
    print(f"comparison of 2 runs: {time.perf_counter() - started:.2f}s")
    html = out.read_text()
    assert clean.run_dir.name in html and spiky.run_dir.name in html and "Final metrics" in html
    assert html.count("<svg") >= 4


def test_report_command_rewrites_a_run_report_and_rejects_a_non_run(runs, tmp_path, capsys):
    clean, _ = runs
    (clean.run_dir / "report.html").unlink()
    assert main(["report", str(clean.run_dir)]) == 0
    assert (clean.run_dir / "report.html").is_file()
    assert main(["report", str(tmp_path)]) == 2
    assert "no events.jsonl" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless chromium (Debian package chromium)")
def test_the_report_renders_in_a_browser(runs, tmp_path):
    from PIL import Image

    _, spiky = runs
    page = write_run_report(spiky.run_dir)
    png = tmp_path / "report.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={png}",
         "--window-size=1200,2000", page.as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert png.is_file(), "chromium wrote no screenshot"
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 2000)
    pixels = np.asarray(image)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text, lines and fills, not a blank page
    # The charts drew in color: matplotlib's default blue is on the page.
    assert ((pixels[..., 2] > 150) & (pixels[..., 0] < 90)).sum() > 500


def _write_events(run_dir, events):
    import json

    run_dir.mkdir(parents=True)
    with (run_dir / "events.jsonl").open("w") as fh:
        for event in events:
            fh.write(json.dumps({"time": 0.0, **event}) + "\n")



def test_task_plots_confusion_matrix_per_class_and_sae_curves(tmp_path):
    """No training: the run directory is written by hand."""
    run_dir = tmp_path / "cls-20260101-000000"
    steps = [{"type": "step", "step": k, "loss": 2.0 / k, "lr": 1e-4, "grad_norm": 1.0, "tokens_per_s": 100.0,
              "samples_per_dataset": {"a": 4 * k}} for k in range(1, 11)]
    metrics = {"accuracy": 0.8, "macro_f1": 0.75, "l0": 31.5, "explained_variance": 0.9,
               "confusion_matrix": [[5, 1, 0], [0, 4, 2], [1, 0, 6]], "labels": ["cat", "dog", "eel"],
               "recall": {"cat": 0.83, "dog": 0.67, "eel": 0.86}}
    evals = [{"type": "eval", "step": k, "eval_loss": 1.0 / k, "per_dataset": {"a": 1.0 / k}, "metrics": metrics}
             for k in (5, 10)]
    _write_events(run_dir, [{"type": "run_started", "step": 0, "config": {}, "run_dir": str(run_dir), "world_size": 1,
                             "device": "cpu"}, *steps, *evals, {"type": "run_finished", "step": 10}])
    html = write_run_report(run_dir).read_text()
    # Chart text stays <text> for the browser to set (plots.SVG_RC).
    for title in ("confusion matrix", "recall per class", "explained variance", "macro f1", ">l0</text>"):
        assert title in html, title
    assert ">eel</text>" in html  # the matrix's class labels
    assert html.count("<svg") >= 4 + 5
