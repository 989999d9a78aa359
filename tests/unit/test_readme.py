"""README's config reference documents every key the schema accepts (and no stale ones)."""

from __future__ import annotations

import re
from pathlib import Path

from tui_trainer.config.schema import config_fields

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_config_key_is_in_the_readme_reference():
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_]+(?:\.[a-z0-9_\[\]]+)+)` \|", text, flags=re.M))
    schema = {key for key, _, _ in config_fields()}
    assert schema - documented == set(), "keys missing from README"
    assert documented - schema == set(), "README documents keys that do not exist"


def test_quick_start_has_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in section.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]
