"""The inline-SVG charts: well-formed, escaped, robust to NaN and empty input."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from onerec.demo.report.svg import Series, bar_chart, fmt_number, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_nice_ticks_hand_derived() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.0, 7.0) == [0.0, 2.0, 4.0, 6.0, 8.0]  # raw step 1.4 -> 2
    assert nice_ticks(0.0, 11.0) == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]  # raw 2.2 -> 2.5
    flat = nice_ticks(3.0, 3.0)  # a constant series still gets a range around it
    assert flat[0] < 3.0 < flat[-1]
    assert nice_ticks(math.nan, 1.0) == [0.0, 1.0]


def test_fmt_number() -> None:
    assert [fmt_number(v) for v in (0, 12000, 2.5, 0.05, 1.2e-5)] == [
        "0",
        "12k",
        "2.5",
        "0.05",
        "1.2e-05",
    ]


def test_line_chart_draws_one_polyline_per_series_and_escapes_text() -> None:
    svg = line_chart(
        [
            Series("a<b", [(0, 1.0), (1, 2.0), (2, math.nan)]),
            Series("right", [(0, 0.1), (2, 0.3)], axis="right"),
        ],
        title="loss & <metric>",
        x_label="step",
        y_label="loss",
        y2_label="ndcg",
    )
    root = parse(svg)  # raises on malformed XML or unescaped text
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert len(lines[0].get("points", "").split()) == 2, "the NaN point is skipped"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "loss & <metric>" in texts and "a<b" in texts and "ndcg" in texts


def test_right_axis_series_uses_its_own_scale() -> None:
    svg = line_chart(
        [
            Series("big", [(0, 0.0), (1, 1000.0)]),
            Series("small", [(0, 0.0), (1, 0.01)], axis="right"),
        ],
        "t",
        "x",
        "y",
        "y2",
    )
    root = parse(svg)
    big, small = (p.get("points", "") for p in root.findall(f"{SVG}polyline"))
    # Both lines span the full plot height on their own axis, so their end points share a y.
    assert big.split()[-1].split(",")[1] == small.split()[-1].split(",")[1]


def test_bar_chart_draws_every_bar_and_the_reference_line() -> None:
    svg = bar_chart(
        ["E0", "E1", "E2"],
        [("layer 1", [0.2, 0.5, 0.3]), ("layer 2", [0.3, math.nan, 0.7])],
        "load",
        "share",
        reference=1 / 3,
        reference_label="uniform",
    )
    root = parse(svg)
    bars = [r for r in root.findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 5  # 6 values, one NaN skipped
    heights = [float(r.get("height", 0)) for r in bars]
    assert heights[1] > heights[0] > 0  # 0.5 drawn taller than 0.2
    assert any(line.get("stroke-dasharray") for line in root.findall(f"{SVG}line"))


def test_empty_input_says_no_data() -> None:
    for svg in (line_chart([Series("x", [])], "t", "x", "y"), bar_chart([], [], "t", "y")):
        assert "no data" in svg
        parse(svg)
