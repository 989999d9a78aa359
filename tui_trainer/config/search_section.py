"""The ``[search]`` section (DESIGN §4.2): a hyperparameter study over dotted config keys.

Only the shape of each range is checked here (``low < high``, ``log`` needs ``low > 0``,
``choices`` non-empty); whether a key exists and accepts the values is checked against
the run config itself in ``search/space.py``, which can build the trial configs.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ParamRange(BaseModel):
    """One key of ``[search.space]``: ``{low, high, log?, step?}`` or ``{choices = [...]}``."""

    model_config = ConfigDict(extra="forbid")

    low: float | None = Field(None, description="lower bound (inclusive)")
    high: float | None = Field(None, description="upper bound (inclusive)")
    log: bool = Field(False, description="sample on a log scale (low must be > 0)")
    step: float | None = Field(None, gt=0, description="grid spacing; integer keys use integer steps")
    choices: list[Any] | None = Field(None, description="a fixed list of values instead of a range")

    @model_validator(mode="after")
    def _one_shape(self) -> ParamRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("give either choices or low/high (with log or step), not both")
            if not self.choices:
                raise ValueError("choices must list at least one value")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs low and high, or choices")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite numbers, got {self.low} and {self.high}")
        if self.low >= self.high:
            raise ValueError(f"low must be < high, got low = {self.low}, high = {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0, got low = {self.low}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self


class SearchSection(BaseModel):
    """How the study samples, prunes and ranks trials."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    trials: int = Field(12, ge=1, description="trials to run (a grid runs at most its size)")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="optuna sampler")
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="stop trials that fall behind")
    startup_trials: int = Field(5, ge=0, description="median pruner: completed trials before anything is pruned")
    warmup_steps: int = Field(0, ge=0, description="median pruner: steps of a trial before it can be pruned")
    objective: str = Field("eval_loss", min_length=1, description="an eval metric the task reports")
    direction: Literal["minimize", "maximize"] = Field("minimize", description="better objective values")
    parallel: int = Field(1, ge=1, description="trials at a time")
    timeout_minutes: float = Field(0, ge=0, description="stop starting trials after this long; 0 = no limit")
    baseline: bool = Field(True, description="trial 0 runs the config's own values, measured on the same data")
    space: dict[str, ParamRange] = Field(default_factory=dict, description="dotted config key -> range")
