"""App-level messages: what the training worker and the run follower tell the app.

Widget-owned messages live inside their widgets; these cross screens, so they live here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from tui_trainer.engine.events import Event


class EngineEvent(Message):
    """An engine event (already coalesced for per-step metrics) reached the UI thread."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
        """The frozen engine event."""


class TrainingDone(Message):
    """The engine's ``train()`` returned; the run is over however it ended."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result
        """The engine's TrainResult (status, exit_code, checkpoint, message)."""


class TrainingCrashed(Message):
    """The engine raised instead of returning a result."""

    def __init__(self, message: str, *, user_error: bool, details: str = "") -> None:
        super().__init__()
        self.message = message
        """One-paragraph message for the error screen."""
        self.user_error = user_error
        """True for a UserError (bad config, data, model path): exit code 2, no traceback."""
        self.details = details
        """The traceback for anything that is not a UserError (a bug)."""

    @property
    def exit_code(self) -> int:
        return 2 if self.user_error else 1


# -- requests screens post up; the app (navigation) and its controller (the run) handle them.
# Screens never import the app: these keep the dependency one-way (app -> screens).


class StartTraining(Message):
    """Train ``config`` in this process (optionally resuming from a checkpoint)."""

    def __init__(self, config: Any, resume: Path | None = None) -> None:
        super().__init__()
        self.config = config
        """The validated RunConfig to train."""
        self.resume = resume
        """Checkpoint directory to resume from, or None for a new run."""


class TogglePause(Message):
    """Pause the local run between steps, or resume it."""


class CheckpointNow(Message):
    """Save a checkpoint of the local run after the current step."""


class StopTraining(Message):
    """Stop the local run; it saves a resumable checkpoint."""

    def __init__(self, reason: str = "user") -> None:
        super().__init__()
        self.reason = reason
        """Why (user | signal), recorded in the checkpoint and the run_stopped event."""


class RequestExternalStop(Message):
    """Ask another process's run to stop by writing its STOP file."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir
        """The followed run's directory."""


class OpenMonitor(Message):
    """Show the monitor of a run directory (the local run's, or follow another's)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir
        """The run directory picked on the home screen."""


class OpenWizard(Message):
    """The mix is valid: go on to the model and preset step."""

    def __init__(self, draft: Any) -> None:
        super().__init__()
        self.draft = draft
        """The datasets screen's MixDraft."""


class GoHome(Message):
    """Back to the home screen, whatever was pushed on top of it."""


class NewRunFrom(Message):
    """Open the wizard on a finished run's config, as a new run."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir
        """The finished run whose config.toml seeds the new run."""


class OpenSearch(Message):
    """Show the live trials of a hyperparameter study."""

    def __init__(self, study_dir: Path) -> None:
        super().__init__()
        self.study_dir = study_dir
        """The study directory (``<name>-search-<time>``)."""


class StartSearch(Message):
    """Start a hyperparameter study over ``config`` (in its own process) and show it."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        """The validated RunConfig whose values trial 0 runs as the baseline."""


class LaunchRun(Message):
    """Train ``config`` in processes of its own (detached, or through torchrun) and follow it."""

    def __init__(self, config: Any, *, detach: bool, nproc: int) -> None:
        super().__init__()
        self.config = config
        """The validated RunConfig to train."""
        self.detach = detach
        """True: the run outlives the app; False: the app stops it (STOP file) when it quits."""
        self.nproc = nproc
        """Processes on this machine (torchrun when above 1)."""


class FollowedEvents(Message, bubble=False):
    """What one poll of a followed run read, posted by the monitor's reader thread to itself."""

    def __init__(self, events: list[Event], remote_host: str | None) -> None:
        super().__init__()
        self.events = events
        """Complete new lines of the run's events.jsonl, oldest first."""
        self.remote_host = remote_host
        """The machine training the run when it is not this one (from run.pid), else None."""


class ResumeReady(Message):
    """A picked checkpoint's config and its run's earlier events were read (in a worker)."""

    def __init__(self, config: Any, checkpoint: Path, history: list[Any]) -> None:
        super().__init__()
        self.config = config
        """The run's resolved config.toml."""
        self.checkpoint = checkpoint
        """The checkpoint to resume from."""
        self.history = history
        """The run's events up to the checkpoint (the chart's earlier curve)."""


class LoadFailed(Message):
    """Reading a run's files in a worker failed with a UserError."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title = title
        """The error screen's title."""
        self.text = text
        """The UserError's message."""
