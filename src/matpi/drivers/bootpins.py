"""Which Pi pins drive the mat's outputs, their off level, and the config.txt lines for it.

Between power-on and the moment matpi claims its pins, nothing but the
BCM2835 reset pulls decides what a relay sees (GPIO 0-8 pulled high, 9-27
low). The Pi firmware applies `gpio=` lines in config.txt before Linux boots,
so they hold every output at its off level from the first second. `safe-off`
drives the same pins off when the service ends. Pure: no I/O.
"""

from dataclasses import dataclass
from typing import Final

from matpi.config.settings import HardwareConfig

HEATER: Final = "heater"
POWER: Final = "power relay"
MOTOR: Final = "vibration motor"


@dataclass(frozen=True)
class PiOutput:
    """One output on a Pi GPIO pin, and which level is on."""

    role: str
    pin: int
    active_high: bool

    @property
    def off_level(self) -> str:
        return "low" if self.active_high else "high"

    @property
    def polarity(self) -> str:
        return "active-high" if self.active_high else "active-low"


DEFAULT_OUTPUTS: Final = (
    PiOutput(HEATER, 5, active_high=False),
    PiOutput(POWER, 6, active_high=False),
    PiOutput(MOTOR, 18, active_high=True),
)
"""matpi's default wiring, chosen so that the boot pulls keep every output off:
GPIO5 and GPIO6 pull high (an active-low relay board stays off), GPIO18 pulls low
(an active-high MOSFET stays off)."""


def pi_outputs(hw: HardwareConfig) -> list[PiOutput]:
    """The outputs a config puts on the Pi's own pins, heater first.

    With driver "board" the heater and the motor are on the mat board, so only
    the power relay (if any) is on the Pi.
    """
    outputs = []
    if hw.driver == "gpio":
        outputs.append(PiOutput(HEATER, hw.heater.pin, hw.heater.active_high))
    if hw.power_pin is not None:
        outputs.append(PiOutput(POWER, hw.power_pin, hw.power_active_high))
    vib = hw.vibration
    if hw.driver == "gpio" and vib.kind != "none" and vib.pin is not None:
        outputs.append(PiOutput(MOTOR, vib.pin, vib.active_high))
    return outputs


def config_txt_lines(outputs: list[PiOutput] | tuple[PiOutput, ...]) -> list[str]:
    """config.txt lines that make each output a pin driven to its off level at power-on.

    `op,dh` is "output, drive high" (off for an active-low board), `op,dl` "drive
    low". `[all]` first, because lines after a model filter such as `[pi4]`
    would apply to that model only.
    """
    lines = ["[all]"]
    for out in outputs:
        lines.append(f"# {out.role}, {out.polarity}: off = {out.off_level}")
        lines.append(f"gpio={out.pin}=op,{'dl' if out.active_high else 'dh'}")
    return lines
