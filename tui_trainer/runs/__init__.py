"""runs: see DESIGN.md §2."""
