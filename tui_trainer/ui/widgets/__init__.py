"""Reusable widgets of the tui-trainer app."""
