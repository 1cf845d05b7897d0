"""Splits the serial byte stream into lines without ever holding more than one frame.

Pure and valid MicroPython; the host has the same rules in matpi.drivers.boardproto.
"""

TOO_LONG = None  # stands in the output for a line that was dropped for its length


class LineAssembler:
    """Cuts bytes into newline-terminated lines of at most `max_line_bytes`.

    A longer line is dropped whole, up to and including its newline, and shows
    up once as TOO_LONG; empty lines are skipped, so a sender may write a lone
    newline to end whatever partial frame the receiver still holds.
    """

    def __init__(self, max_line_bytes):
        self._max = max_line_bytes
        self._pending = bytearray()
        self._overflowed = False

    def feed(self, data):
        """The complete lines (bytes, newline removed) or TOO_LONG markers in `data`."""
        lines = []
        for byte in data:
            if byte == 0x0A:
                if self._overflowed:
                    lines.append(TOO_LONG)
                elif self._pending:
                    lines.append(bytes(self._pending))
                self._pending = bytearray()
                self._overflowed = False
            elif self._overflowed:
                continue
            elif len(self._pending) >= self._max:
                self._pending = bytearray()
                self._overflowed = True
            else:
                self._pending.append(byte)
        return lines
