"""What a server that sends clients away says to forge log lines, and the check that it fails."""

from __future__ import annotations

import logging

FORGED = "2026-01-01 00:00:00.000 ERROR (MainThread) [homeassistant.core] forged"
# A line break, the forged line, then ANSI escapes that would clear the screen and recolour.
INJECTION = f"bye\n{FORGED}\r\n\x1b[2J\x1b[31mred\u2028{FORGED}\u202e"


def assert_no_forged_line(records: list[logging.LogRecord]) -> None:
    """No record breaks a line where the server put one, so no forged line stands alone."""
    assert records
    for record in records:
        text = record.getMessage()
        assert "\x1b" not in text
        for line in text.splitlines()[1:]:  # splitlines knows U+2028 and friends too
            assert not line.startswith(FORGED[:10]), text
