"""The host driver without hardware: scripted answers, a pseudo-terminal as the serial port,
the command line."""

import binascii
import os
import re
import select
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from hw.board.driver import SerialTransport
from hw.board.protocol import (ACK, CMD_PING, CREDIT, DONE, ERR_TIMEOUT, NAK, PIXEL, LayerShape,
                               ping_reply)
from hw.board.driver import EngineLink, LinkCorrupted, LinkError, LinkTimeout
from hw.host import main
from testkit.link_bench import LAYERS


class ScriptedTransport:
    """Answers with fixed bytes; records what the host wrote."""

    def __init__(self, answer):
        self.answer = bytearray(answer)
        self.written = bytearray()

    def write(self, data):
        self.written += data

    def read(self, n):
        data, self.answer = bytes(self.answer[:n]), self.answer[n:]
        return data


# What a link with LAYERS, 4 channels per beat, a 16-byte window and 4-byte credits answers,
# written out by hand from the protocol description.
# Protocol 2: per layer cin and e (16 bits), no fixed geometry (4 zeros), no tag (0xFF).
PING_REPLY = bytes([0xF2, 4, 4, 4, 2,
                    3, 0, 8, 0, 0, 0, 0, 0, 0xFF,
                    10, 0, 3, 0, 0, 0, 0, 0, 0xFF,
                    4, 0, 4, 0, 0, 0, 0, 0, 0xFF,
                    1, 0, 9, 0, 0, 0, 0, 0, 0xFF])
# A link with one 5x5 -> 2x3 layer of 1 -> 4 channels, tag 7, and 4 channels per beat.
FIXED_REPLY = bytes([0xF2, 4, 1, 4, 2, 1, 0, 4, 0, 5, 5, 2, 3, 7])


def test_host_checks_input_before_sending():
    transport = ScriptedTransport(PING_REPLY)
    host = EngineLink(transport)
    host.ping()
    with pytest.raises(ValueError, match=re.escape("Input of layer 1 must have shape "
                                                   "(height, width, 10), not (2, 2, 3)")):
        host.run_layer(1, np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape("Layer must be 0 to 3, not 4")):
        host.run_layer(4, np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape("Height and width must be 1 to 255")):
        host.run_layer(0, np.zeros((256, 1, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape("Input must hold integers 0..255, not -1..5")):
        host.run_layer(0, np.array([[[-1, 0, 5]]], dtype=np.int16))
    with pytest.raises(TypeError, match="Input must hold integers 0..255, not float64"):
        host.run_layer(0, np.zeros((1, 1, 3)))
    assert transport.written == bytes([CMD_PING])


def test_host_protocol_errors():
    with pytest.raises(LinkTimeout, match="PING reply"):
        EngineLink(ScriptedTransport(PING_REPLY[:3])).ping()
    with pytest.raises(LinkError, match="not a host link: PING answered 0x41"):
        EngineLink(ScriptedTransport(b"AAAAA")).ping()
    with pytest.raises(LinkError, match="link runs layers"):
        EngineLink(ScriptedTransport(PING_REPLY), layers=[(3, 8)]).ping()
    x = np.zeros((1, 1, 3), dtype=np.uint8)
    with pytest.raises(LinkError, match="link refused layer 0 of 1x1"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([NAK]))).run_layer(0, x)
    with pytest.raises(LinkTimeout, match="link abandoned layer 0"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, ERR_TIMEOUT, 0, 0, 0, 0]))
                   ).run_layer(0, x)
    with pytest.raises(LinkTimeout, match="the check bytes of layer 0"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, ERR_TIMEOUT, 0]))).run_layer(0, x)
    with pytest.raises(LinkError, match="unexpected byte 0x55"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, 0x55]))).run_layer(0, x)
    with pytest.raises(LinkError, match="finished after 0 of 1 pixels"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, DONE, 0, 0, 0, 0]))
                   ).run_layer(0, x)
    with pytest.raises(LinkTimeout, match="pixel 0 of layer 0"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, PIXEL, 1, 2]))).run_layer(0, x)


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def read_master(master, n, timeout=1.0):
    data = b""
    while len(data) < n and select.select([master], [], [], timeout)[0]:
        data += os.read(master, n - len(data))
    return data


def answer_ping(master, reply):
    def serve():
        if read_master(master, 1) == bytes([CMD_PING]):
            os.write(master, reply)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_serial_transport_on_a_pty(pty_pair):
    master, name = pty_pair
    with SerialTransport(name, 115200, timeout=0.2) as port:
        os.write(master, b"stale")
        time.sleep(0.05)                                   # the pty delivers asynchronously
        port.reset_input_buffer()
        port.write(b"\x00\xffabc\n")
        assert read_master(master, 6) == b"\x00\xffabc\n"    # raw: nothing added or mangled
        os.write(master, b"\r\n\x03\x11\x13")
        assert port.read(5) == b"\r\n\x03\x11\x13"
        assert port.read(1) == b""                         # timeout


def test_cli_ping(pty_pair, capsys):
    master, name = pty_pair
    thread = answer_ping(master, PING_REPLY)
    assert main(["--port", name, "--timeout", "1", "ping"]) == 0
    thread.join(1)
    out = capsys.readouterr().out
    assert "4 channels per beat, 4 layers, window 16 B, credit 4 B" in out
    assert "layer 1: cin 10, e 3" in out


def cli_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_cli_errors(pty_pair, tmp_path, capsys):
    assert "no serial port /nonexistent/ttyUSB9" in cli_error(
        capsys, ["--port", "/nonexistent/ttyUSB9", "ping"])
    master, name = pty_pair
    assert "not supported" in cli_error(capsys, ["--port", name, "--baud", "123", "ping"])
    for content in (None, b"not numpy"):
        path = tmp_path / "x.npy"
        if content is not None:
            path.write_bytes(content)
        assert "cannot read input" in cli_error(
            capsys, ["--port", name, "run", "--layer", "0", "--input", str(path),
                     "--output", str(tmp_path / "y.npy")])
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 2, 5), dtype=np.uint8))
    answer_ping(master, PING_REPLY)
    assert "must have shape (height, width, 3)" in cli_error(
        capsys, ["--port", name, "--timeout", "1", "run", "--layer", "0", "--input", str(wrong),
                 "--output", str(tmp_path / "y.npy")])
    assert not (tmp_path / "y.npy").exists()


def test_cli_timeout(pty_pair, capsys):
    _, name = pty_pair
    err = cli_error(capsys, ["--port", name, "--timeout", "0.1", "ping"])
    assert err.startswith("error: timeout: timed out waiting for the PING reply")


def test_ping_reply_is_the_documented_one():
    assert ping_reply(4, LAYERS, 16, 4) == PING_REPLY


def test_driver_needs_no_amaranth():
    code = ("import sys, hw.board.driver, hw.host; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(baud="9600"), TypeError, "Baud rate must be an integer, not '9600'"),
    (dict(baud=123), ValueError, "Baud rate 123 is not supported: use a standard rate such "
                                 "as 115200"),
    (dict(timeout="1"), TypeError, "Timeout must be a number of seconds, not '1'"),
    (dict(timeout=0), ValueError, "Timeout must be a positive number of seconds, not 0"),
])
def test_serial_transport_parameters_are_checked(kwargs, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        SerialTransport("/nonexistent/ttyUSB9", **kwargs)


def test_serial_transport_bad_port():
    with pytest.raises(LinkError, match=re.escape("no serial port /nonexistent/ttyUSB9")):
        SerialTransport("/nonexistent/ttyUSB9")
    with pytest.raises(LinkError, match=re.escape("cannot open /: ")):
        SerialTransport("/")


def _run_answer(header, payload, pixels, flip_in=0, flip_out=0, credits=0):
    """ACK, credits, the pixels, DONE and the check bytes, computed here with the standard
    library."""
    check_in = binascii.crc_hqx(bytes(header) + bytes(payload), 0) ^ flip_in
    check_out = binascii.crc_hqx(b"".join(pixels), 0) ^ flip_out
    body = b"".join(bytes([PIXEL]) + p for p in pixels)
    return (bytes([ACK, *[CREDIT] * credits]) + body + bytes([DONE])
            + check_in.to_bytes(2, "little")
            + check_out.to_bytes(2, "little"))


def test_host_checks_the_check_bytes():
    x = np.array([[[200, 1, 2]]], dtype=np.uint8)       # layer 0: 3 -> 8 channels, 1x1
    header, payload = [0, 1, 1], [200, 1, 2, 0]
    pixels = [bytes(range(10, 18)) + bytes(0)]
    ok = EngineLink(ScriptedTransport(PING_REPLY + _run_answer(header, payload, pixels)))
    np.testing.assert_array_equal(ok.run_layer(0, x), np.arange(10, 18).reshape(1, 1, 8))
    for flips, what in (((1, 0), "input: link"), ((0, 0x100), "output: link")):
        bad = EngineLink(ScriptedTransport(PING_REPLY + _run_answer(header, payload, pixels,
                                                                    *flips)))
        with pytest.raises(LinkCorrupted, match="check values differ") as info:
            bad.run_layer(0, x)
        assert what in str(info.value)


def test_host_fixed_geometry():
    host = EngineLink(ScriptedTransport(FIXED_REPLY))
    info = host.ping()
    assert info.layers == ((1, 4),)
    assert info.shapes == (LayerShape(1, 4, 5, 5, 2, 3, 7),)
    with pytest.raises(ValueError, match=re.escape("Layer 0 takes a 5x5 input, not 5x4")):
        host.run_layer(0, np.zeros((5, 4, 1), dtype=np.uint8))
    x = np.arange(25, dtype=np.uint8).reshape(5, 5, 1)
    pixels = [bytes([k, k, k, k]) for k in range(6)]
    payload = b"".join(bytes([v, 0, 0, 0]) for v in range(25))
    # A 16-byte window and 4-byte credits: 21 credits let the other 84 bytes go.
    host = EngineLink(ScriptedTransport(FIXED_REPLY + _run_answer([0, 5, 5], payload, pixels,
                                                                  credits=21)))
    y = host.run_layer(0, x)
    np.testing.assert_array_equal(y, np.repeat(np.arange(6, dtype=np.uint8), 4).reshape(2, 3, 4))


def test_host_retries_after_a_bad_run():
    """A corrupted answer, then (after the recovery's drain and PING) a good one."""
    x = np.array([[[200, 1, 2]]], dtype=np.uint8)
    header, payload = [0, 1, 1], [200, 1, 2, 0]
    pixels = [bytes(range(10, 18))]
    good = _run_answer(header, payload, pixels)
    bad = _run_answer(header, payload, pixels, flip_out=4)
    transport = CommandTransport([PING_REPLY, bad + b"stray", PING_REPLY, good])
    seen = []
    y, attempts = EngineLink(transport).run_layer_retrying(
        0, x, on_retry=lambda n, e: seen.append((n, type(e).__name__)))
    assert attempts == 2 and seen == [(1, "LinkCorrupted")]
    np.testing.assert_array_equal(y, np.arange(10, 18).reshape(1, 1, 8))
    # Always corrupted: the last error is named after the retries.
    bad = _run_answer(header, payload, pixels, flip_in=1)
    transport = CommandTransport([PING_REPLY, bad, PING_REPLY, bad, PING_REPLY, bad])
    with pytest.raises(LinkError, match="layer 0 failed 3 times, last: layer 0: check values"):
        EngineLink(transport).run_layer_retrying(0, x, retries=2)


class CommandTransport:
    """Each command the host writes (PING, or a RUN header) releases the next scripted answer;
    with nothing left to read the line is quiet (``read`` returns nothing)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.answer = bytearray()

    def write(self, data):
        if data[:1] in (bytes([CMD_PING]), bytes([1])) and len(data) in (1, 4):
            self.answer += self.answers.pop(0)

    def read(self, n):
        data = bytes(self.answer[:n])
        del self.answer[:n]
        return data
