"""Text styles for messages, chosen for contrast on the dark theme and under NO_COLOR.

NO_COLOR makes Textual turn every colour into the grey of the same luminance. Pure red
(#ff0000) is dark (luminance 0.21): as grey it is 54 on a background of 18, contrast 1.6.
These keep a WCAG contrast of at least 4.5 on the dark surfaces both in colour and as grey.
"""

ERROR = "bold #ff6b6b"
"""Validation errors and failures."""
WARNING = "#ffd75f"
"""Something that works but deserves a look."""
OK = "#5fd75f"
"""A valid mix or config."""
