"""planning: see DESIGN.md §2."""
