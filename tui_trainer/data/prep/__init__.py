"""data.prep: see DESIGN.md §2."""
