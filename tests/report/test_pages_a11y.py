"""WCAG 2.1 AA contrast of the dashboard's colours, computed from the CSS and the timeline's
palette (the browser tests run axe-core on the rendered pages as well)."""

from __future__ import annotations

import re

import pytest

from netvigil.report.dashboard_assets import CSS
from netvigil.report.timeline import COLOURS, PATTERNS, WORDS


def luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    def chan(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * chan(r) + 0.7152 * chan(g) + 0.0722 * chan(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def css_colour(selector: str, prop: str) -> str:
    m = re.search(r"(?:^|[}\n])" + re.escape(selector) + r"\{[^}]*?" + prop + r":(#[0-9a-fA-F]{3,6})", CSS)
    assert m, f"{selector} {prop} not in the CSS"
    return m.group(1)


def test_contrast_formula_matches_known_values():
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777", "#fafafa") == pytest.approx(4.29, abs=0.01)  # the old .muted: below AA
    assert contrast("#fff", "#d84315") == pytest.approx(4.44, abs=0.01)  # the old TLS orange: below AA


def test_text_colours_meet_aa():
    page = css_colour("body", "background")
    assert contrast(css_colour(".muted,.state", "color"), page) >= 4.5
    assert contrast(css_colour("body", "color"), page) >= 4.5
    assert contrast(css_colour("a", "color"), page) >= 4.5


@pytest.mark.parametrize("cls", ["ok", "dns", "tcp", "tls", "http", "quic", "throttled", "down", "outage"])
def test_white_on_every_grid_cell_meets_aa(cls):
    assert contrast("#ffffff", css_colour(f".cell.{cls}", "background")) >= 4.5


def test_every_timeline_class_is_named_in_the_legend_and_slow_differs_by_pattern():
    assert set(COLOURS) == set(WORDS)
    assert PATTERNS["throttled"] and PATTERNS["partial"] and PATTERNS["outage"]
    assert len(set(COLOURS.values())) == len(COLOURS), "two classes share a colour"
