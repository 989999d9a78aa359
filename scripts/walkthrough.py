"""The new-user walkthrough as pictures: each test scene at 80x24, at 120x40 and at 120x40 with
NO_COLOR=1, as SVG (and PNG where chromium is on the PATH), to look for cut-off or unreadable text.

    .venv/bin/python scripts/walkthrough.py --out /tmp/after
    .venv/bin/python scripts/walkthrough.py --root /tmp/old-checkout --out /tmp/before   # another tree's code

The scenes are the snapshot tests' (tests/functional/scenes.py, fake runs and a frozen clock),
so two trees are compared on the same screens. ``--root`` imports tui_trainer and the scenes
from that checkout instead of this one (an editable install's finder is taken out of the way).
NO_COLOR is read when the app starts, so each variant runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"80x24": ((80, 24), False), "120x40": ((120, 40), False), "120x40-nocolor": ((120, 40), True)}
"""The terminal sizes of the walkthrough (a laptop's tmux pane, a full screen) and NO_COLOR."""
DEFAULT_SCENES = ("home_runs", "demo_picker", "datasets_sequential", "datasets_curriculum", "wizard", "monitor", "monitor_findings", "error")


def _import_from(root: Path) -> None:
    """Make ``root``'s tui_trainer and tests importable ahead of any installed copy."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") and "__editable__" not in type(f).__module__]
    for name in [m for m in sys.modules if m == "tui_trainer" or m.startswith(("tui_trainer.", "tests"))]:
        del sys.modules[name]
    sys.path.insert(0, str(root))


async def _capture(name: str, size: tuple[int, int]) -> str:
    from tests.functional.scenes import SCENES

    scene = SCENES[name]
    app = scene.make_app()
    async with app.run_test(size=size) as pilot:
        await scene.run_before(pilot)
        await pilot.pause()
        svg = app.export_screenshot(title=f"tui-trainer: {name.replace('_', ' ')} {size[0]}x{size[1]}")
        if getattr(app, "controls", None) is not None:
            app.controls.request_stop("user")
        gate = getattr(app.services.train, "gate", None)
        if gate is not None:
            gate.set()
    return svg


def _one_variant(root: Path, variant: str, scenes: list[str], out: Path) -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    _import_from(root)
    from tests.functional.scenes import SCENES

    size, _ = VARIANTS[variant]
    for name in scenes:
        if name not in SCENES:
            print(f"{variant}: {name}: no such scene in {root}", file=sys.stderr)
            continue
        path = out / f"{name}-{variant}.svg"
        path.write_text(asyncio.run(_capture(name, size)), encoding="utf-8")
        print(path)


def _png(svg: Path, size: tuple[int, int]) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return
    width, height = size[0] * 12 + 40, size[1] * 25 + 80  # Textual's SVG cell is about 12 x 24.4 px
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", f"--screenshot={svg.with_suffix('.png')}",
         f"--window-size={width},{height}", svg.resolve().as_uri()],
        check=False, capture_output=True, timeout=60,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code draws the screens")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", nargs="*", default=list(DEFAULT_SCENES))
    parser.add_argument("--png", action="store_true", help="also render each SVG to PNG with headless chromium")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)  # the child process's one variant
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.variant:
        _one_variant(args.root.resolve(), args.variant, args.scenes, args.out)
        return
    for variant, (size, no_color) in VARIANTS.items():
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | ({"NO_COLOR": "1"} if no_color else {})
        cmd = [sys.executable, __file__, "--root", str(args.root), "--out", str(args.out), "--variant", variant, "--scenes", *args.scenes]
        subprocess.run(cmd, env=env, check=True)
        if args.png:
            for svg in sorted(args.out.glob(f"*-{variant}.svg")):
                _png(svg, size)


if __name__ == "__main__":
    main()
