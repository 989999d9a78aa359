"""Functional tests: a fixed time zone so rendered times are the same on every machine."""

from __future__ import annotations

import os
import time

os.environ["TZ"] = "UTC"
time.tzset()
