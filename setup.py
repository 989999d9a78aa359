"""Package layout that pyproject.toml cannot express: the top-level presets/ folder ships
inside the wheel as tui_trainer/presets/ (DESIGN §2 keeps it at the repository root).

Everything else about the project lives in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["tui_trainer", "tui_trainer.*"]), "tui_trainer.presets"],
    package_dir={"tui_trainer.presets": "presets"},
    package_data={"tui_trainer.presets": ["*.toml"], "tui_trainer.ui": ["*.tcss", "**/*.tcss"]},
)
