"""config: see DESIGN.md §2."""
