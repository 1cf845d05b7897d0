"""The edge that samples thermometers and hands each reading to the controller."""

import logging
import threading

from matpi.core.events import Reading
from matpi.drivers.base import Post, Thermometer
from matpi.drivers.clock import Clock

log = logging.getLogger(__name__)


class ThermometerPoller:
    """Reads every thermometer each `interval_s` (clock seconds) in its own thread.

    A sensor that raises instead of returning an error Reading is reported as
    one: the poller never dies, so a stale reading is always the sensor's
    fault and never a crashed thread's.
    """

    def __init__(
        self, thermometers: list[Thermometer], post: Post, clock: Clock, interval_s: float
    ) -> None:
        self._thermometers = thermometers
        self._post = post
        self._clock = clock
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="matpi-thermometers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock.now()
            for thermometer in self._thermometers:
                self._post(self._read(thermometer))
            spent = self._clock.now() - started
            self._stop.wait(self._clock.real_seconds(self._interval_s - spent))

    @staticmethod
    def _read(thermometer: Thermometer) -> Reading:
        try:
            return thermometer.read()
        except Exception as exc:
            log.exception("thermometer %s failed", thermometer.name)
            return Reading(thermometer.name, None, f"driver error: {exc}")
