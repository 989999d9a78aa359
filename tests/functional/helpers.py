"""Reading what a widget shows, as plain text."""

from __future__ import annotations

from rich.console import Console
from textual.widgets import Static


def static_text(widget: Static, width: int = 120) -> str:
    """The widget's content rendered without styles (tables and Text alike)."""
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    content = widget.content
    console.print(content)
    return console.export_text()


async def wait_until(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds (never blocks the app's event loop)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        await pilot.pause(0.02)


async def followed(pilot, screen) -> None:
    """Wait until the monitor following another run has read and shown its first poll."""
    await wait_until(pilot, lambda: screen.polls >= 1)


async def poll_followed(pilot, screen) -> None:
    """One more poll of a followed run, read in its thread: wait until it is applied."""
    target = screen.polls + (2 if screen.poll_in_flight else 1)  # one in flight may have read before the change
    screen.poll_follower()
    await wait_until(pilot, lambda: screen.polls >= target)


async def demo_corpora_mix(pilot, strategy: str):
    """The datasets screen with ``strategy`` picked and both demo corpora added and inspected."""
    from textual.widgets import Select

    await pilot.press("n")
    screen = pilot.app.screen
    screen.query_one("#strategy", Select).value = strategy
    await pilot.pause()
    screen.add_dataset("demo:python-code")
    screen.add_dataset("demo:python-docs")
    await wait_until(pilot, lambda: all(d.inspected for d in screen.draft.datasets))
    await pilot.pause()
    return screen


async def home_read(pilot, app, reads: int = 1) -> None:
    """Wait until the home screen has read the runs directory ``reads`` times.

    The read runs in a worker thread, so the table and the empty-state text fill a few
    frames after mount; a test that looks at once races it (CI failed that way).
    """
    await wait_until(pilot, lambda: getattr(app.screen, "reads", 0) >= reads)
    await pilot.pause()


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[int, int, int], bg: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rendered_cells(app, region) -> list[tuple[str, tuple[int, int, int], tuple[int, int, int]]]:
    """(text, foreground, background) of every non-blank segment the terminal gets in ``region``,
    after the app's line filters (NO_COLOR's monochrome among them)."""
    strips = app.screen._compositor.render_strips()
    out = []
    for y in range(region.y, region.y + region.height):
        strip = strips[y].crop(region.x, region.x + region.width)
        for seg in strip:
            if not seg.text.strip() or seg.style is None:
                continue
            style = seg.style
            fg = style.color.get_truecolor() if style.color else None
            bg = style.bgcolor.get_truecolor() if style.bgcolor else None
            if fg is None or bg is None:
                continue
            fg, bg = tuple(fg), tuple(bg)
            if style.reverse:
                fg, bg = bg, fg
            out.append((seg.text, fg, bg))
    return out


async def wait_training(app) -> None:
    """Wait for the training worker only (a file browser's loader worker never completes)."""
    training = [w for w in app.workers if w.group == "training"]
    if training:  # an empty list would mean "every worker" to Textual
        await app.workers.wait_for_complete(training)


def rendered_text(app, region) -> str:
    """The characters the terminal shows in ``region``, lines joined by spaces."""
    strips = app.screen._compositor.render_strips()
    return " ".join(strips[y].crop(region.x, region.x + region.width).text for y in range(region.y, region.y + region.height))


def flows_app(tmp_path, **kwargs):
    """The app on fake services in ``tmp_path`` (``runs=`` and ``engine=`` go to the services)."""
    from tests.functional.fakes import make_services
    from tui_trainer.ui.app import TrainerApp

    runs = kwargs.pop("runs", None)
    engine = kwargs.pop("engine", None)
    return TrainerApp(services=make_services(tmp_path, engine, runs), output_dir=tmp_path / "runs", browse_root=tmp_path, **kwargs)


async def type_into(pilot, selector: str, text: str) -> None:
    """Set the Input's whole value at once: one Input.Changed, as after the last keystroke."""
    from textual.widgets import Input

    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = text
    await pilot.pause()
