"""search: see DESIGN.md §2."""
