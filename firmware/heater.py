"""Time-proportioning of the heater SSR: a duty becomes on-time in a short window.

Pure and valid MicroPython. An SSR switching at mains zero-crossings can follow
a 2 s window; a mechanical relay could not (see SAFETY.md on relay wear), so the
board is wired with an SSR.
"""

WINDOW_MS = 2000
MIN_PULSE_MS = 20  # one mains cycle at 50 Hz: shorter pulses do nothing useful


def conducts(duty_pm, now_ms, window_ms=WINDOW_MS):
    """Whether the SSR conducts at `now_ms` for a duty in per mille (0..1000)."""
    on_ms = duty_pm * window_ms // 1000
    if on_ms < MIN_PULSE_MS:
        return False
    if window_ms - on_ms < MIN_PULSE_MS:
        return True
    return now_ms % window_ms < on_ms
