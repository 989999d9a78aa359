"""User-facing errors.

Everything a user can fix (a config key, a data file, a model path, a resume target)
raises a subclass of :class:`UserError`. The CLI turns those into exit code 2 and a
one-paragraph message with no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message names the file/field/line and what to do."""

    exit_code = 2


class ConfigError(UserError):
    """The run config (TOML, --set overrides, preset files) is invalid."""


class DataError(UserError):
    """A dataset cannot be read or prepared."""


class ModelError(UserError):
    """The model path/name cannot be resolved or loaded."""


class ResumeError(UserError):
    """The resume target is missing, invalid, or from a different config."""


class CheckpointError(UserError):
    """A checkpoint could not be written or verified."""


class DistributedError(UserError):
    """The processes of a several-process run lost each other: a collective timed out, or a peer exited."""
