"""hardware.UsbLink polls stdin, so the loop never blocks on the USB serial port.

CPython only (a pipe stands in for the USB port).
"""

import io
import os
from collections.abc import Iterator

import hardware
import pytest


class Stream:
    """What MicroPython's sys.stdin / sys.stdout offer: a pollable stream with raw `buffer`."""

    def __init__(self, buffer: io.RawIOBase | io.BytesIO, fd: int = -1) -> None:
        self.buffer = buffer
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


@pytest.fixture
def pipe() -> Iterator[tuple[int, io.FileIO]]:
    read_fd, write_fd = os.pipe()
    reader = io.FileIO(read_fd, "rb")
    yield write_fd, reader
    reader.close()
    os.close(write_fd)


def test_usb_link_reads_what_is_there_without_blocking(pipe: tuple[int, io.FileIO]) -> None:
    write_fd, reader = pipe
    link = hardware.UsbLink(Stream(reader, reader.fileno()), Stream(io.BytesIO()))
    assert link.read() is None
    os.write(write_fd, b"1 PING*8C6F\n")
    assert link.read() == b"1 PING*8C6F\n"
    assert link.read() is None


def test_usb_link_reads_in_bounded_chunks(pipe: tuple[int, io.FileIO]) -> None:
    write_fd, reader = pipe
    link = hardware.UsbLink(Stream(reader, reader.fileno()), Stream(io.BytesIO()))
    os.write(write_fd, b"x" * 100)
    assert len(link.read() or b"") == hardware.USB_READ_CHUNK_BYTES


def test_usb_link_writes_raw_bytes(pipe: tuple[int, io.FileIO]) -> None:
    _write_fd, reader = pipe
    out = io.BytesIO()
    link = hardware.UsbLink(Stream(reader, reader.fileno()), Stream(out))
    link.write(b"0 HELLO\n")
    assert out.getvalue() == b"0 HELLO\n"
