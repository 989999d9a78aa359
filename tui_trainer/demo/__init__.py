"""demo: see DESIGN.md §2."""
