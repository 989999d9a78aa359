"""analytics: see DESIGN.md §2."""
