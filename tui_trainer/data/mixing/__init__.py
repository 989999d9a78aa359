"""data.mixing: see DESIGN.md §2."""
