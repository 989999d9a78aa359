"""Regenerate screenshots/*.svg (one per screen) from the deterministic test scenes.

    .venv/bin/python scripts/screenshots.py            # writes screenshots/<scene>.svg
    .venv/bin/python scripts/screenshots.py --text     # also prints each screen as plain text

The scenes are the snapshot tests' (tests/functional/scenes.py): fake runs, scripted
engine events and a frozen clock, so the pictures only change when the UI does.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="output directory")
    parser.add_argument("--text", action="store_true", help="also print each screen as text")
    parser.add_argument("scenes", nargs="*", help="only these scenes (default: all)")
    args = parser.parse_args(argv)
    from tests.functional.scenes import SCENES, prepare_scratch

    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = args.scenes or list(SCENES)
    with tempfile.TemporaryDirectory() as scratch:
        prepare_scratch(Path(scratch))
        os.chdir(scratch)
        for name in names:
            path = asyncio.run(_capture(name, out_dir, args.text))
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
