"""Boot entry on the Pico: outputs off, link open, watchdog on, then the loop for good.

If the loop ever raises, the outputs go off and the watchdog, no longer fed,
resets the board, which then boots with a latched WATCHDOG fault.
"""

import time

import hardware
import machine
import runner

LINK = "uart"  # "usb" speaks the protocol on the USB serial port instead


def main(machine_module, clock, link_kind=LINK, keep_running=runner.forever):
    hw = hardware.Hardware(machine_module)
    if hardware.maintenance_requested(machine_module):
        print("matpi board: maintenance jumper set, loop not started")
        return
    watchdog_reset = hardware.watchdog_caused_reset(machine_module)
    link = hardware.open_link(machine_module, link_kind)
    hw.start_watchdog(machine_module)
    try:
        runner.run(hw, link, clock, watchdog_reset, keep_running)
    finally:
        hw.all_off()


if __name__ == "__main__":
    main(machine, time)
