"""The firmware's codec against the shared vectors, and its own limits."""

import lines
import protocol
from fakes import load_vectors, raises

VECTORS = load_vectors()


def test_vectors_are_for_this_protocol_version_and_frame_size():
    assert VECTORS["protocol_version"] == protocol.PROTOCOL_VERSION
    assert VECTORS["max_frame_bytes"] == protocol.MAX_FRAME_BYTES


def test_crc_matches_the_published_check_values():
    for case in VECTORS["crc"]:
        assert protocol.crc16(case["data"].encode()) == int(case["crc"], 16)


def test_every_valid_frame_decodes_to_its_meaning():
    for case in VECTORS["frames"]:
        seq, kind, fields = protocol.decode(case["frame"].encode())
        assert (seq, kind, fields) == (case["seq"], case["kind"], case["fields"]), case["frame"]


def test_every_valid_frame_is_encoded_exactly():
    for case in VECTORS["frames"]:
        line = protocol.encode(case["seq"], case["kind"], case["fields"])
        assert line == case["frame"].encode(), case["frame"]


def test_every_rejected_frame_is_rejected_for_its_reason():
    for case in VECTORS["rejected"]:
        error = raises(protocol.FrameError, protocol.decode, case["frame"].encode())
        assert error.reason == case["reason"], case["note"]


def test_sequence_check_follows_the_vectors():
    for case in VECTORS["sequences"]:
        check = protocol.SequenceCheck()
        accepted = [check.accept(seq) for seq in case["seqs"]]
        assert accepted == case["accepted"], case["note"]


def test_sender_numbers_frames_as_the_vectors_say():
    case = VECTORS["sender_sequence"]
    counter = protocol.SequenceCounter()
    assert counter.opening() == 0
    assert [counter.next() for _ in case["first"]] == case["first"]
    for _ in range(65535 - len(case["first"])):
        last = counter.next()
    assert last == 65535
    assert counter.next() == case["after_65535"]


def test_line_assembler_follows_the_stream_vectors():
    for case in VECTORS["streams"]:
        assembler = lines.LineAssembler(protocol.MAX_LINE_BYTES)
        found = []
        for chunk in case["chunks"]:
            found += assembler.feed(chunk.encode())
        expected = [None if line is None else line.encode() for line in case["lines"]]
        assert found == expected, case["note"]


def test_encode_refuses_what_decode_would_reject():
    raises(ValueError, protocol.encode, 1, "HEAT", {"duty_pm": 1001})
    raises(ValueError, protocol.encode, 1, "HEAT", {})
    raises(ValueError, protocol.encode, 1, "JUMP", {})
    raises(ValueError, protocol.encode, 0, "HEAT", {"duty_pm": 1})
    raises(ValueError, protocol.encode, 5, "SYNC", {})
    raises(ValueError, protocol.encode, 0, "HELLO", {"proto": 1, "fw": "x", "caps": "A" * 200})


def test_the_longest_telemetry_fits_in_a_frame():
    fields = {
        "t_cc": -5000,
        "heat_pm": 1000,
        "heat_on": 1,
        "motor_pm": 1000,
        "fault": "HEATER_STALE",
        "n_crc": 65535,
        "n_fmt": 65535,
        "n_len": 65535,
        "n_seq": 65535,
    }
    line = protocol.encode(65535, "TELEM", fields)
    assert len(line) + 1 <= protocol.MAX_FRAME_BYTES
