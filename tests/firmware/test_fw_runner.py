"""The main loop on fake pins, link and clock: what reaches the pins and the wire."""

import protocol
import runner
import thermistor
from fakes import FakeClock, FakeHardware, FakeLink, Script, decoded, host_frame

NTC = thermistor.Ntc()


def run_for(until_ms, watchdog_reset=False, received=None):
    """Runs the loop with no host, or with `received` bytes waiting on the link."""
    hw = FakeHardware(NTC.counts(25.0))
    clock = FakeClock()
    link = FakeLink()
    if received:
        link.send(received)
    runner.run(hw, link, clock, watchdog_reset, keep_running=Script(clock, until_ms))
    return hw, link


def kinds(link):
    return [kind for kind, fields in decoded(link.lines())]


def run_with_host(until_ms, frames_at, hw=None, clock=None):
    """Runs the loop with host frames arriving at given times: [(at_ms, [(kind, fields)])]."""
    hw = hw or FakeHardware(NTC.counts(25.0))
    clock = clock or FakeClock()
    link = FakeLink()
    seq = protocol.SequenceCounter()

    def sender(frames):
        def send():
            for kind, fields in frames:
                number = seq.opening() if kind == "SYNC" else seq.next()
                link.send(host_frame(number, kind, **fields) + b"\n")

        return send

    start_ms = clock.now_ms
    actions = [(start_ms + at_ms, sender(frames)) for at_ms, frames in frames_at]
    runner.run(hw, link, clock, keep_running=Script(clock, start_ms + until_ms, actions))
    return hw, link


def test_the_watchdog_is_fed_on_every_pass():
    hw, _link = run_for(1000)
    assert hw.watchdog.feeds == 1000 // runner.LOOP_PAUSE_MS


def test_hello_first_then_telemetry_at_4_hz():
    _hw, link = run_for(1000)
    assert kinds(link) == ["HELLO"] + ["TELEM"] * 4


def test_outputs_are_written_off_from_the_first_pass():
    hw, _link = run_for(10)
    assert hw.heater.history[0] == 0
    assert hw.motor.duty == 0


def test_heater_follows_the_host_and_stops_when_it_is_not_refreshed():
    on_at = [(0, [("SYNC", {}), ("HEAT", {"duty_pm": 1000}), ("MOTOR", {"duty_pm": 500})])]
    pings = [(t, [("PING", {})]) for t in range(500, 4000, 500)]
    hw, link = run_with_host(1990, on_at + pings)
    assert hw.heater.level == 1
    assert hw.motor.duty == 32767
    hw, link = run_with_host(2100, on_at + pings)
    assert hw.heater.level == 0
    assert hw.motor.duty == 0
    assert ("FAULT", {"code": "HEATER_STALE", "t_cc": 2500}) in decoded(link.lines())


def test_silent_host_stops_the_motor_within_2_s():
    hw, link = run_with_host(2100, [(0, [("SYNC", {}), ("MOTOR", {"duty_pm": 500})])])
    assert hw.motor.duty == 0
    assert ("FAULT", {"code": "HOST_SILENT", "t_cc": 2500}) in decoded(link.lines())


def test_a_hot_ntc_trips_the_board():
    hw = FakeHardware(NTC.counts(25.0))
    clock = FakeClock()
    link = FakeLink()
    link.send(host_frame(0, "SYNC") + b"\n" + host_frame(1, "HEAT", duty_pm=1000) + b"\n")

    def overheat():
        assert hw.heater.level == 1
        hw.ntc.counts = NTC.counts(46.0)

    runner.run(hw, link, clock, keep_running=Script(clock, 800, [(400, overheat)]))
    faults = [fields["code"] for kind, fields in decoded(link.lines()) if kind == "FAULT"]
    assert faults == ["OVER_TEMP"]
    assert hw.heater.level == 0


def test_an_overlong_line_is_counted_not_acted_on():
    _hw, link = run_for(300, received=b"x" * 500 + b"\n")
    kind, fields = decoded(link.lines())[-1]
    assert kind == "TELEM"
    assert fields["n_len"] == 1


def test_time_keeps_running_across_a_ticks_wrap():
    wrap_ms = 1 << 30
    heat = [(0, [("SYNC", {}), ("HEAT", {"duty_pm": 1000})])]
    levels = []
    for until_ms in (1990, 2100):
        clock = FakeClock(start_ms=wrap_ms - 1000, wrap_ms=wrap_ms)
        hw, _link = run_with_host(until_ms, heat, clock=clock)
        levels.append(hw.heater.level)
    assert levels == [1, 0]


def test_a_watchdog_reset_is_reported_at_boot():
    _hw, link = run_for(10, watchdog_reset=True)
    assert kinds(link)[:2] == ["HELLO", "FAULT"]
