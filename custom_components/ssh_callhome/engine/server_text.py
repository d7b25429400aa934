"""Text the server chooses, made safe to show: one line, no terminal or bidi tricks, bounded.

A server (or whoever answers in its place before the host key is checked) chooses its disconnect
reason, its version banner and the messages of the errors it causes. Printed as they are, a line
break in them starts a forged line in Home Assistant's log, an escape sequence drives the
terminal that shows it, a bidi control reorders what the reader sees. No Home Assistant imports.
"""

from __future__ import annotations

import logging

# Long enough for any honest reason or banner (OpenSSH's are under 100 characters).
SERVER_TEXT_LIMIT = 200
_ELLIPSIS = "…"


def printable(text: str, limit: int | None = SERVER_TEXT_LIMIT) -> str:
    """`text` on one line: whatever is not printable written as `repr` writes it, then capped.

    Not printable are control characters (line breaks, escape), line and paragraph separators
    (U+2028, U+2029), format characters (bidi controls), lone surrogates, unassigned code
    points. A backslash is doubled so that an escaped character cannot be told apart from text.
    """
    if limit is not None:
        text = text[: limit + 1]
    escaped = "".join(_escaped(char) for char in text)
    if limit is not None and len(escaped) > limit:
        return escaped[: limit - len(_ELLIPSIS)] + _ELLIPSIS
    return escaped


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    return repr(char)[1:-1]


class OneLineRecords(logging.Filter):
    """Writes asyncssh's own log lines on one line: they quote the server's reasons verbatim.

    Its hex dumps of packets (records with a `packet`) span lines by design and print every
    byte outside printable ASCII as a dot: they are left alone.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape the message in place; never drops a record."""
        if getattr(record, "packet", None) is not None:
            return True
        message = record.getMessage()
        if not message.isprintable():
            record.msg = printable(message, limit=None)
            record.args = None
        return True


_ONE_LINE_RECORDS = OneLineRecords()


def keep_asyncssh_records_on_one_line() -> None:
    """Install the filter on asyncssh's logger, where its connections and channels log.

    Called before each connection is opened: a logger keeps a filter only once, however often
    it is added, and the config flow connects before the integration itself is set up.
    """
    logging.getLogger("asyncssh").addFilter(_ONE_LINE_RECORDS)
