"""Puts firmware/ and these tests' helpers on sys.path, as the Pico's flat filesystem does."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRMWARE_DIR = HERE.parents[1] / "firmware"

for path in (FIRMWARE_DIR, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
