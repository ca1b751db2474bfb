"""Printing text that came from outside (ARM error text, tags, ledger reasons) on an operator's terminal.

Rich does not interpret markup inside `Text`, but it passes control characters through: a tag holding an
OSC-8 hyperlink or a clear-screen sequence would act on the terminal of whoever runs `status` or `report`.
Every such cell goes through `safe_text`, which shows each control or bidirectional-override character as a
visible escape instead.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 controls (ESC starts every terminal sequence; C1 has 8-bit CSI/OSC), DEL, and the bidirectional
# overrides and isolates that can make text read differently from what it is ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain(value: object) -> str:
    """`value` as text with every unsafe character shown as `\\xNN` / `\\uNNNN`."""
    return _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], str(value))


def safe_text(value: object, style: str = "") -> Text:
    """A rich Text cell that cannot carry markup or terminal control sequences."""
    return Text(plain(value), style=style)
