"""Regenerate screenshots/*.svg (one per screen) from the deterministic test scenes, and
screenshots/report.png, the report.html of a real demo run rendered by headless Chromium.

    .venv/bin/python scripts/screenshots.py            # writes screenshots/<scene>.svg and report.png
    .venv/bin/python scripts/screenshots.py --text     # also prints each screen as plain text
    .venv/bin/python scripts/screenshots.py --no-report  # only the screens (no training run)
    .venv/bin/python scripts/screenshots.py report     # only the report

The scenes are the snapshot tests' (tests/functional/scenes.py): fake runs, scripted
engine events and a frozen clock, so the pictures only change when the UI does. The report
comes from a short run of the embedded demo (REPORT_STEPS steps, a loss spike injected at
REPORT_SPIKE_STEP so the findings table and the chart's mark have something to show); it
needs ``chromium`` (Debian package) on the PATH and a minute or two of CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["TZ"] = "UTC"
time.tzset()


def _plain_text(app) -> str:
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def _capture(name: str, out_dir: Path, text: bool) -> Path:
    from tests.functional.scenes import SCENES, SIZE

    scene = SCENES[name]
    app = scene.make_app()
    async with app.run_test(size=SIZE) as pilot:
        await scene.run_before(pilot)
        await pilot.pause()
        svg = app.export_screenshot(title=f"tui-trainer: {name.replace('_', ' ')}")
        if text:
            print(f"===== {name} =====\n{_plain_text(app)}")
        if app.controls is not None:
            app.controls.request_stop("user")
        engine = app.services.train
        if hasattr(engine, "gate"):
            engine.gate.set()
    path = out_dir / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


REPORT_NAME = "report"
"""The name that picks the report among the scenes on the command line."""
REPORT_STEPS = 32
REPORT_SPIKE_STEP = 24
REPORT_WINDOW = (1200, 2000)
"""Chromium's window: the page's width as a laptop shows it, tall enough for the curves and findings."""


def _report(out_dir: Path, scratch: Path) -> Path:
    import shutil
    import subprocess

    from tui_trainer.api import train
    from tui_trainer.demo.catalog import demo_run_config

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("screenshots: the report picture needs chromium on the PATH (apt-get install chromium)")
    cfg = demo_run_config(REPORT_STEPS, str(scratch / "report-runs"))
    cfg = cfg.model_copy(update={"analytics": cfg.analytics.model_copy(update={"spike_window": 16})})
    result = train(cfg, faults=f"spike@{REPORT_SPIKE_STEP}")
    page = result.run_dir / "report.html"
    png = out_dir / "report.png"
    width, height = REPORT_WINDOW
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={png}",
         f"--window-size={width},{height}", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )
    if not png.is_file():
        raise SystemExit(f"screenshots: chromium wrote no {png} (exit {done.returncode}): {done.stderr[-500:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="output directory")
    parser.add_argument("--text", action="store_true", help="also print each screen as text")
    parser.add_argument("--no-report", action="store_true", help="skip the report picture (no training run)")
    parser.add_argument("scenes", nargs="*", help="only these scenes (default: all)")
    args = parser.parse_args(argv)
    from tests.functional.scenes import SCENES, prepare_scratch

    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = args.scenes or [*SCENES, *([] if args.no_report else [REPORT_NAME])]
    with tempfile.TemporaryDirectory() as scratch:
        prepare_scratch(Path(scratch))
        os.chdir(scratch)
        for name in names:
            if name == REPORT_NAME:
                path = _report(out_dir, Path(scratch))
            else:
                path = asyncio.run(_capture(name, out_dir, args.text))
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
