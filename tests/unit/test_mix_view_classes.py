"""The datasets screen's class bars and its narrow-width choices, as pure functions (no Textual app)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.data.inspect import ClassDistribution
from tui_trainer.tasks.classification.split import imbalance_ratio
from tui_trainer.ui.datasets_view import COLUMNS, demo_labels, short_demo_labels, table_width
from tui_trainer.ui.mix_view import class_distribution


def _classes(train: list[int], cap: int) -> ClassDistribution:
    kept = [min(c, cap) if cap else c for c in train]
    counts = [c + 1 for c in train]
    return ClassDistribution(
        labels=tuple(f"class-{i}" for i in range(len(train))), counts=tuple(counts), train=tuple(train),
        kept=tuple(kept), cap=cap, imbalance=imbalance_ratio(counts), imbalance_kept=imbalance_ratio(kept),
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(st.integers(min_value=1, max_value=50_000), min_size=2, max_size=12),
    cap=st.integers(min_value=0, max_value=60_000),
    width=st.integers(min_value=24, max_value=140),
)
def test_bars_fit_the_width_and_show_what_the_cap_keeps(train, cap, width):
    lines = class_distribution(_classes(train, cap), width).plain.splitlines()
    bars = lines[1 : 1 + len(train)]
    longest = max(train)
    for line, count in zip(bars, train, strict=True):
        assert len(line) <= width
        solid, shaded = line.count("█"), line.count("▒")
        kept = min(count, cap) if cap else count
        if not cap or count <= cap:
            assert shaded == 0  # nothing dropped, nothing shaded
        assert line.rstrip().endswith(f"{kept:,}")
    lengths = [line.count("█") + line.count("▒") for line in bars]
    assert lengths[train.index(longest)] == max(lengths) >= 1  # bars are proportional: the largest is the longest
    assert ("keeps" in lines[-1]) == (cap > 0)


def test_the_header_and_the_cap_line_by_hand():
    text = class_distribution(_classes([6, 3, 1], 3), 60).plain
    assert text.splitlines()[0].startswith("3 classes · imbalance 3.5:1")  # 7 / 2 rows overall
    assert "cap 3 per class keeps 7 of 10 training rows; imbalance 3.0:1 after the cap" in text


def test_demo_labels_fall_back_to_the_names_without_their_shared_prefix():
    names = ["python-code", "python-docs"]
    assert short_demo_labels(names) == ["code", "docs"]
    assert demo_labels(names, 30) == names and demo_labels(names, 29) == ["code", "docs"]
    assert short_demo_labels(["digits", "python-topics"]) == ["digits", "python-topics"]  # nothing shared


def test_table_width_counts_the_widest_cell_header_and_padding():
    rows = [{"name": "python-code", "format": "demo", "shape": "text", "rows": "1,000", "tokens": "200,000", "mix": "phase 0: 100%"}]
    # 11 + 8 (the format column's "reading…") + 5 ("shape") + 5 + 7 + 13, each + 2
    assert table_width(rows, COLUMNS) == 11 + 8 + 5 + 5 + 7 + 13 + 12
