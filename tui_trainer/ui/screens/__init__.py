"""Screens of the tui-trainer app."""
