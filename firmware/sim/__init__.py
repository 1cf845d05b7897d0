"""CPython-only helpers that run the firmware off the board; never copied to the Pico."""
