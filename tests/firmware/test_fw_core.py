"""BoardCore: every guard the board keeps on its own, through the frames the host sends."""

import core
import protocol
from fakes import decoded, host_frame

COOL_C = 25.0


class Host:
    """Sends numbered frames to one BoardCore, as a host would."""

    def __init__(self, board, now_ms=0):
        self.board = board
        self.seq = protocol.SequenceCounter()
        self.send("SYNC", now_ms)

    def send(self, kind, now_ms, **fields):
        seq = self.seq.opening() if kind == "SYNC" else self.seq.next()
        self.board.receive(host_frame(seq, kind, **fields), now_ms)
        return decoded(self.board.take_outbox())


def synced(temp_c=COOL_C):
    board = core.BoardCore(temp_c)
    host = Host(board)
    board.take_outbox()
    return board, host


def trip(board, temp_c):
    for _ in range(3):
        board.sense(temp_c)


def test_boot_says_hello_with_both_versions():
    board = core.BoardCore(COOL_C)
    line = board.take_outbox()[0]
    assert protocol.decode(line) == (
        0,
        "HELLO",
        {"proto": 1, "fw": core.FIRMWARE_VERSION, "caps": "HEAT,MOTOR,NTC,WDT"},
    )


def test_outputs_stay_off_until_the_host_asks():
    board, _host = synced()
    assert not board.heater_on(0)
    assert board.motor_duty_u16(0) == 0


def test_commands_before_sync_are_refused():
    board = core.BoardCore(COOL_C)
    board.take_outbox()
    board.receive(host_frame(1, "HEAT", duty_pm=1000), 0)
    assert decoded(board.take_outbox()) == [("ERR", {"ref": 1, "code": "SYNC"})]
    assert not board.heater_on(0)
    assert board.rejected[protocol.SEQ] == 1


def test_sync_answers_hello_and_restarts_numbering():
    board, host = synced()
    host.send("PING", 0)
    board.receive(host_frame(0, "SYNC"), 0)
    board.send_telemetry(0)
    seqs = [protocol.decode(line)[0] for line in board.take_outbox()]
    assert seqs == [0, 1]


def test_sync_switches_everything_off():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=1000)
    host.send("MOTOR", 0, duty_pm=1000)
    assert [kind for kind, fields in host.send("SYNC", 10)] == ["HELLO"]
    assert not board.heater_on(20)
    assert board.motor_duty_u16(20) == 0


def test_heat_turns_the_heater_on():
    board, host = synced()
    assert host.send("HEAT", 0, duty_pm=1000) == [("ACK", {"ref": 1})]
    assert board.heater_on(10)


def test_heartbeats_do_not_extend_heat():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=1000)
    for now_ms in (500, 1000, 1500, 1999):
        host.send("PING", now_ms)
        board.check_deadlines(now_ms)
    assert board.heater_on(1999)
    host.send("PING", 2000)
    assert not board.heater_on(2000)
    board.check_deadlines(2000)
    assert decoded(board.take_outbox()) == [("FAULT", {"code": "HEATER_STALE", "t_cc": 2500})]


def test_heat_refreshed_every_second_stays_on():
    board, host = synced()
    for now_ms in range(0, 6000, 1000):
        host.send("HEAT", now_ms, duty_pm=1000)
        board.check_deadlines(now_ms + 999)
        assert board.heater_on(now_ms + 999)
    assert board.fault.code is None


def test_silent_host_stops_the_motor():
    board, host = synced()
    host.send("MOTOR", 0, duty_pm=500)
    assert board.motor_duty_u16(1999) == 32767
    assert board.motor_duty_u16(2000) == 0
    board.check_deadlines(2000)
    assert decoded(board.take_outbox()) == [("FAULT", {"code": "HOST_SILENT", "t_cc": 2500})]


def test_heartbeats_keep_the_motor_running():
    board, host = synced()
    host.send("MOTOR", 0, duty_pm=500)
    for now_ms in range(500, 6000, 500):
        host.send("PING", now_ms)
        board.check_deadlines(now_ms)
    assert board.motor_duty_u16(6000) == 32767
    assert board.fault.code is None


def test_silence_with_outputs_off_latches_nothing():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=0)
    board.check_deadlines(60000)
    assert board.fault.code is None


def test_over_temperature_trips_and_reports():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=1000)
    host.send("MOTOR", 0, duty_pm=1000)
    trip(board, 45.5)
    assert decoded(board.take_outbox()) == [("FAULT", {"code": "OVER_TEMP", "t_cc": 4550})]
    assert not board.heater_on(10)
    assert board.motor_duty_u16(10) == 0


def test_one_hot_reading_stops_heat_before_a_fault_latches():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=1000)
    board.sense(45.0)
    assert not board.heater_on(10)
    assert board.fault.code is None
    board.sense(40.0)
    assert board.heater_on(20)


def test_open_sensor_trips():
    board, _host = synced()
    trip(board, float("-inf"))
    assert decoded(board.take_outbox()) == [("FAULT", {"code": "SENSOR_LOW", "t_cc": -5000})]


def test_shorted_sensor_trips():
    board, _host = synced()
    trip(board, float("inf"))
    assert decoded(board.take_outbox()) == [("FAULT", {"code": "SENSOR_HIGH", "t_cc": 15000})]


def test_a_latched_fault_refuses_outputs_but_accepts_off():
    board, host = synced()
    trip(board, 46.0)
    board.take_outbox()
    assert host.send("HEAT", 0, duty_pm=1000) == [("ERR", {"ref": 1, "code": "FAULT"})]
    assert host.send("MOTOR", 0, duty_pm=300) == [("ERR", {"ref": 2, "code": "FAULT"})]
    assert host.send("HEAT", 0, duty_pm=0) == [("ACK", {"ref": 3})]
    assert host.send("MOTOR", 0, duty_pm=0) == [("ACK", {"ref": 4})]


def test_a_latched_fault_overrides_any_duty():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=1000)
    host.send("MOTOR", 0, duty_pm=1000)
    board.fault.latch("OVER_TEMP")  # latched behind the core's back: outputs still go off
    assert not board.heater_on(10)
    assert board.motor_duty_u16(10) == 0


def test_clear_is_refused_while_the_mat_is_warm():
    board, host = synced()
    trip(board, 46.0)
    board.sense(35.0)
    board.take_outbox()
    assert host.send("CLEAR", 0) == [("ERR", {"ref": 1, "code": "HOT"})]
    assert board.fault.code == "OVER_TEMP"


def test_clear_is_refused_while_the_sensor_is_out_of_range():
    board, host = synced()
    trip(board, float("-inf"))
    board.take_outbox()
    assert host.send("CLEAR", 0) == [("ERR", {"ref": 1, "code": "SENSOR"})]
    assert board.fault.code == "SENSOR_LOW"


def test_clear_once_cool_needs_a_new_heat_command():
    board, host = synced()
    host.send("HEAT", 0, duty_pm=1000)
    trip(board, 46.0)
    board.sense(30.0)
    board.take_outbox()
    assert host.send("CLEAR", 100) == [("ACK", {"ref": 2})]
    assert board.fault.code is None
    assert not board.heater_on(200)
    host.send("HEAT", 200, duty_pm=1000)
    assert board.heater_on(300)


def test_watchdog_reset_boots_with_a_latched_fault():
    board = core.BoardCore(COOL_C, watchdog_reset=True)
    hello, fault = decoded(board.take_outbox())
    assert hello[0] == "HELLO"
    assert fault == ("FAULT", {"code": "WATCHDOG", "t_cc": 2500})
    host = Host(board)
    board.take_outbox()
    assert host.send("HEAT", 0, duty_pm=1000) == [("ERR", {"ref": 1, "code": "FAULT"})]


def test_rejected_frames_are_counted_and_never_acted_on():
    board, host = synced()
    good = host_frame(1, "HEAT", duty_pm=1000)
    board.receive(good[:-1] + (b"0" if good[-1:] != b"0" else b"1"), 0)
    board.receive(b"1 HEAT duty_pm=1000", 0)
    board.receive(protocol.encode(1, "ACK", {"ref": 1}), 0)
    board.reject(protocol.LENGTH)
    assert not board.heater_on(10)
    assert board.take_outbox() == []
    host.send("PING", 0)
    assert host.send("PING", 0) == [("ACK", {"ref": 2})]
    board.receive(host_frame(2, "HEAT", duty_pm=1000), 0)
    assert decoded(board.take_outbox()) == [("ERR", {"ref": 2, "code": "SEQ"})]
    assert not board.heater_on(10)
    assert board.rejected == {"CRC": 1, "FORMAT": 2, "LENGTH": 1, "SEQ": 1}


def test_telemetry_reports_the_board_state():
    board, host = synced(temp_c=31.234)
    host.send("HEAT", 0, duty_pm=1000)
    host.send("MOTOR", 0, duty_pm=250)
    board.receive(b"garbage", 0)
    board.send_telemetry(10)
    assert decoded(board.take_outbox()) == [
        (
            "TELEM",
            {
                "t_cc": 3123,
                "heat_pm": 1000,
                "heat_on": 1,
                "motor_pm": 250,
                "fault": "NONE",
                "n_crc": 0,
                "n_fmt": 1,
                "n_len": 0,
                "n_seq": 0,
            },
        )
    ]


def test_status_led_blinks_fast_on_a_fault_and_slow_before_sync():
    board = core.BoardCore(COOL_C)
    assert [board.status_led_on(t) for t in (0, 499, 500, 1000)] == [True, True, False, True]
    Host(board)
    assert [board.status_led_on(t) for t in (0, 500)] == [True, True]
    trip(board, 50.0)
    assert [board.status_led_on(t) for t in (0, 125, 250)] == [True, False, True]
