"""run.output_dir that cannot hold a run directory is a ConfigError naming it, before and during the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_trainer.config.schema import config_from_dict
from tui_trainer.engine.checkpoint.rundir import check_output_dir, create_run_dir
from tui_trainer.errors import ConfigError


def _cfg(output_dir: Path | str):
    return config_from_dict({"run": {"name": "r", "output_dir": str(output_dir)}})


@pytest.mark.parametrize("below", ["", "runs/deeper"])
def test_a_file_in_the_way_is_named(tmp_path, below):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    target = blocker / below if below else blocker
    for check in (check_output_dir, create_run_dir):
        with pytest.raises(ConfigError) as info:
            check(_cfg(target))
        assert str(info.value).startswith(f"run.output_dir = {str(target)!r}: {blocker} is a file, not a directory; ")
        assert "set run.output_dir (or --set run.output_dir=DIR)" in str(info.value)
    assert blocker.read_text() == "x"


def test_a_directory_that_cannot_be_created_is_named(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)  # root ignores permissions, so the refusal is simulated
    with pytest.raises(ConfigError, match=r"cannot create a run directory there \(Permission denied\)"):
        create_run_dir(_cfg(tmp_path / "runs"))


def test_a_usable_output_dir_passes_and_is_not_created_by_the_check(tmp_path):
    check_output_dir(_cfg(tmp_path / "a" / "b"))
    assert not (tmp_path / "a").exists()
    run_dir = create_run_dir(_cfg(tmp_path / "a" / "b"))
    assert run_dir.parent == (tmp_path / "a" / "b").resolve() and run_dir.name.startswith("r-")
