"""``python -m hw.host classify``: the command line around the host-driven network.

The hardware path (link, StepEngine, faults on the wire) is tested through the simulated UART
pins in ``tests/test_host_network.py``; here a protocol-level stand-in board (Python, the
golden model as its engine) answers for the embedded synthetic model at 227 x 227, which the
Amaranth simulator would take many minutes to run, so that the command's output and exit
status are checked.
"""

import binascii

import numpy as np
import pytest

from golden import calibrate, codec, fixed
from golden.classify import classify, top_k
from golden.fixed import conv, global_sum
from golden.preprocess import load_image, preprocess
from hw.board.protocol import ACK, CMD_PING, CMD_RUN, DONE, PIXEL
from hw.host import main


@pytest.fixture(scope="module")
def synthetic():
    model = codec.load(None)
    return model, fixed.quantize(model, calibrate.load_plan(model))


class StandInBoard:
    """Speaks protocol 2 for one layer: the last step (conv_final + global sum) of the
    synthetic v1.0 model, tag 9 (its tenth step), 8 channels per beat, computed with golden's
    functions."""

    CIN, CLASSES, SIZE = 512, 1000, 13

    def __init__(self, qmodel):
        self.qmodel = qmodel
        self.answer = bytearray()
        self.received = bytearray()

    def ping_reply(self):
        e = 4 * self.CLASSES
        # A 128 KiB window (more than a real link's), so the host sends all without credits.
        return bytes([0xF2, 8, 1, 17, 13, self.CIN & 0xFF, self.CIN >> 8, e & 0xFF, e >> 8,
                      self.SIZE, self.SIZE, 1, 1, 9])

    def write(self, data):
        self.received += data
        if self.received[:1] == bytes([CMD_PING]):
            del self.received[:1]
            self.answer += self.ping_reply()
        need = 4 + self.SIZE * self.SIZE * self.CIN
        if self.received[:1] == bytes([CMD_RUN]) and len(self.received) == 4:
            self.answer += bytes([ACK])
        if self.received[:1] == bytes([CMD_RUN]) and len(self.received) == need:
            x = np.frombuffer(bytes(self.received[4:]), dtype=np.uint8)
            x = x.reshape(self.SIZE, self.SIZE, self.CIN).transpose(2, 0, 1)
            sums = global_sum(conv(x, self.qmodel.layers["conv_final"]))
            pixel = np.asarray(sums, dtype="<i4").tobytes()
            self.answer += (bytes([PIXEL]) + pixel
                            + bytes([DONE])
                            + binascii.crc_hqx(bytes(self.received[1:]), 0).to_bytes(2, "little")
                            + binascii.crc_hqx(pixel, 0).to_bytes(2, "little"))
            self.received.clear()

    def read(self, n):
        data = bytes(self.answer[:n])
        del self.answer[:n]
        return data


def test_classify_prints_classes_and_where_layers_ran(synthetic, capsys):
    model, qmodel = synthetic
    board = StandInBoard(qmodel)
    assert main(["--port", "sim", "classify", "chelsea", "--topk", "3"], transport=board) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    # The same classes, in the same order, as golden.classify --mode fixed.
    logits = classify(model, preprocess(load_image("chelsea")), mode="fixed", plan=qmodel.plan)
    expected = top_k(logits, 3)
    assert [int(line.split("\t")[1]) for line in lines[:3]] == expected
    assert lines[3].startswith("layers on the board: conv_final; on the host (golden "
                               "fixed-point): conv1, fire2, fire3, fire4, fire5, fire6, fire7, "
                               "fire8, fire9; 0 board run(s) repeated")
    assert "conv_final: on the board (link layer 0)" in err


@pytest.mark.parametrize("argv, message", [
    (["classify", "/nonexistent.png"], "/nonexistent.png"),
    (["classify", "chelsea", "--topk", "0"], "--topk must be between 1 and 1000, not 0"),
    (["classify", "chelsea", "--retries", "-1"], "--retries must be 0 or more, not -1"),
])
def test_classify_errors(argv, message, capsys):
    assert main(["--port", "/nonexistent/ttyUSB9", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_classify_needs_a_network_board(capsys):
    """A board whose layers carry no network tag (single-layer Fire board) is refused."""
    board = StandInBoard(None)
    board.ping_reply = lambda: bytes([0xF2, 8, 1, 9, 7, 96, 0, 128, 0, 0, 0, 0, 0, 0xFF])
    assert main(["--port", "sim", "classify", "chelsea"], transport=board) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the board's layer 0 names no network step"), err
