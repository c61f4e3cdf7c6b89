"""The demo report: inline-SVG charts, the HTML page and the terminal tables."""

from onerec.demo.report.html import render_html
from onerec.demo.report.svg import Series, bar_chart, line_chart

__all__ = ["Series", "bar_chart", "line_chart", "render_html"]
