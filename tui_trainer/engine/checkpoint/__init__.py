"""engine.checkpoint: see DESIGN.md §2."""
