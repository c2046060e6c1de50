# amaranth: UnusedElaboratable=no
"""Activation store alone: random words written from any base (wrapping at the depth) with
random idle cycles and read back under random back-pressure, in order and exactly ``read_words``
of them; the timing of ``written`` and of the first word of a read; a layer's output written
right after its input while the input is read, in one buffer of max(input, output) words; the
parameter checks."""

import numpy as np
import pytest

from hw.network.activation_store import ActivationStore
from testkit.simulate import simulate

#: Cycles from the ``read`` pulse to the first word on ``o`` (the class docstring's latency).
READ_LATENCY = 2


def random_words(rng, count, beat):
    return rng.integers(0, 256, (count, beat)).astype(np.uint8)


async def write(ctx, dut, base, words, rng, *, valid_prob=0.6):
    """Pulse ``write`` at ``base``, then stream ``words`` on ``i`` with random idle cycles and
    ``last`` on the final one. Checks that ``i`` is always ready, that ``written`` is low from
    the pulse until the last word is taken and high the cycle after."""
    ctx.set(dut.write_base, base)
    ctx.set(dut.write, 1)
    await ctx.tick()
    ctx.set(dut.write, 0)
    for n, word in enumerate(words):
        while rng.random() > valid_prob:
            ctx.set(dut.i.valid, 0)
            *_, written = await ctx.tick().sample(dut.written)
            assert written == 0, "written before the last word"
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.data, [int(v) for v in word])
        ctx.set(dut.i.payload.last, int(n == len(words) - 1))
        *_, ready, written = await ctx.tick().sample(dut.i.ready, dut.written)
        assert ready == 1, "i must always be ready"
        assert written == 0, "written before the last word"
    ctx.set(dut.i.valid, 0)
    ctx.set(dut.i.payload.last, 0)
    assert ctx.get(dut.written) == 1, "written must rise the cycle after the last word"


async def read(ctx, dut, base, count, rng, *, ready_prob=0.6, tail=6):
    """Pulse ``read`` for ``count`` words from ``base``; take words under random back-pressure
    until ``count`` have come, then watch ``tail`` more cycles. Returns the words. Checks the
    first word's latency and that ``o.valid`` stays low after the last word."""
    ctx.set(dut.read_base, base)
    ctx.set(dut.read_words, count)
    ctx.set(dut.read, 1)
    await ctx.tick()
    ctx.set(dut.read, 0)
    got = []
    since_pulse = 1
    while len(got) < count:
        ready = int(rng.random() < ready_prob)
        ctx.set(dut.o.ready, ready)
        *_, valid, data, first, last = await ctx.tick().sample(
            dut.o.valid, dut.o.payload.data, dut.o.payload.first, dut.o.payload.last)
        if since_pulse < READ_LATENCY:
            assert valid == 0, f"o.valid {since_pulse} cycle(s) after the read pulse"
        elif since_pulse == READ_LATENCY:
            assert valid == 1, f"first word not valid {READ_LATENCY} cycles after the pulse"
        since_pulse += 1
        if valid and ready:
            assert (first, last) == (0, 0)
            got.append([int(v) for v in data])
    for _ in range(tail):
        ctx.set(dut.o.ready, int(rng.random() < ready_prob))
        *_, valid = await ctx.tick().sample(dut.o.valid)
        assert valid == 0, f"more than read_words = {count} words came out"
    ctx.set(dut.o.ready, 0)
    return np.array(got, np.uint8).reshape(-1, dut.o.payload.data.shape().length)


@pytest.mark.parametrize("beat,depth,base,count", [
    (4, 17, 0, 17),       # the whole buffer
    (8, 20, 15, 12),      # wraps past the end
    (3, 1, 0, 1),         # one word
    (1, 30, 29, 30),      # the whole buffer from its last word
])
def test_write_then_read(beat, depth, base, count):
    rng = np.random.default_rng(beat * 100 + depth)
    dut = ActivationStore(channels_per_beat=beat, words=depth)
    words = random_words(rng, count, beat)
    got = []

    async def bench(ctx):
        assert ctx.get(dut.written) == 0
        await write(ctx, dut, base, words, rng)
        for _ in range(int(rng.integers(0, 3))):   # written is sticky until the next write
            await ctx.tick()
            assert ctx.get(dut.written) == 1
        got.append(await read(ctx, dut, base, count, rng))
        # A second read returns the same words.
        got.append(await read(ctx, dut, base, count, rng, ready_prob=1.0))

    simulate(dut, bench)
    np.testing.assert_array_equal(got[0], words)
    np.testing.assert_array_equal(got[1], words)


@pytest.mark.parametrize("count", [1, 2, 9])
def test_partial_read_stops_after_read_words(count):
    """``read_words`` below what was written: exactly that many words, the first ones."""
    rng = np.random.default_rng(count)
    dut = ActivationStore(channels_per_beat=2, words=10)
    words = random_words(rng, 10, 2)
    got = []

    async def bench(ctx):
        await write(ctx, dut, 3, words, rng)
        got.append(await read(ctx, dut, 3, count, rng, tail=12))

    simulate(dut, bench)
    np.testing.assert_array_equal(got[0], words[:count])


@pytest.mark.parametrize("seed,pixels,bi,bo,base", [
    (1, 6, 3, 5, 0),      # the output grows: N = output words
    (2, 7, 4, 2, 5),      # the output shrinks: N = input words
    (3, 5, 2, 2, 9),      # same size, starting mid-buffer
])
def test_layer_output_right_after_its_input(seed, pixels, bi, bo, base):
    """As a layer uses the store: ``pixels`` input pixels of ``bi`` words are read from
    ``base`` while the output (``bo`` words per pixel, each pixel only after its input was
    read) is written right after them, modulo N = max(input, output). The input read is
    intact and the output reads back whole."""
    rng = np.random.default_rng(seed)
    beat = 2
    depth = max(pixels * bi, pixels * bo)
    dut = ActivationStore(channels_per_beat=beat, words=depth)
    old = random_words(rng, pixels * bi, beat)
    new = random_words(rng, pixels * bo, beat)
    out_base = (base + pixels * bi) % depth
    progress = {"read": 0, "done": False}
    got = {}

    async def reader(ctx):
        while not progress["done"] and progress["read"] == 0:
            await ctx.tick()
        words = []
        ctx.set(dut.read_base, base)
        ctx.set(dut.read_words, len(old))
        ctx.set(dut.read, 1)
        await ctx.tick()
        ctx.set(dut.read, 0)
        while len(words) < len(old):
            ctx.set(dut.o.ready, int(rng.random() < 0.7))
            *_, valid, ready, data = await ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                            dut.o.payload.data)
            if valid and ready:
                words.append([int(v) for v in data])
                progress["read"] = len(words) // bi + 1
        ctx.set(dut.o.ready, 0)
        got["input"] = np.array(words, np.uint8)

    async def writer(ctx):
        await write(ctx, dut, base, old, rng, valid_prob=1.0)
        progress["read"] = 0
        progress["done"] = True
        ctx.set(dut.write_base, out_base)
        ctx.set(dut.write, 1)
        await ctx.tick()
        ctx.set(dut.write, 0)
        for n, word in enumerate(new):
            # Pixel n // bo's output only once its input has been read.
            while progress["read"] <= n // bo or rng.random() < 0.3:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload.data, [int(v) for v in word])
            ctx.set(dut.i.payload.last, int(n == len(new) - 1))
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        while "input" not in got:
            await ctx.tick()
        got["output"] = await read(ctx, dut, out_base, len(new), rng)

    simulate(dut, writer, reader)
    np.testing.assert_array_equal(got["input"], old)
    np.testing.assert_array_equal(got["output"], new)


def test_word_can_be_read_the_cycle_after_it_is_taken():
    """A read pulsed in the same cycle as the first word of a gap-free write, with ``o`` always
    ready, reads each word the cycle after it was taken (the documented write-to-read latency):
    every word must still come out right."""
    rng = np.random.default_rng(7)
    beat, count = 2, 12
    dut = ActivationStore(channels_per_beat=beat, words=count)
    words = random_words(rng, count, beat)
    got = []

    async def bench(ctx):
        ctx.set(dut.write_base, 4)
        ctx.set(dut.write, 1)
        await ctx.tick()
        ctx.set(dut.write, 0)
        ctx.set(dut.read_base, 4)
        ctx.set(dut.read_words, count)
        ctx.set(dut.o.ready, 1)
        for cycle in range(count + READ_LATENCY + 4):
            ctx.set(dut.read, int(cycle == 0))
            ctx.set(dut.i.valid, int(cycle < count))
            if cycle < count:
                ctx.set(dut.i.payload.data, [int(v) for v in words[cycle]])
                ctx.set(dut.i.payload.last, int(cycle == count - 1))
            *_, valid, data = await ctx.tick().sample(dut.o.valid, dut.o.payload.data)
            if valid:
                got.append([int(v) for v in data])

    simulate(dut, bench)
    np.testing.assert_array_equal(np.array(got, np.uint8), words)


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"words": 0}, ValueError, "^Buffer depth must be from 1 to 16777216, not 0$"),
    ({"words": 8.0}, TypeError, r"^Buffer depth must be an integer, not 8\.0$"),
    ({"words": (8, 8)}, TypeError, r"^Buffer depth must be an integer, not \(8, 8\)$"),
    ({"channels_per_beat": 0}, ValueError, "^Channels per beat must be from 1 to 64, not 0$"),
    ({"channels_per_beat": "8"}, TypeError, "^Channels per beat must be an integer, not '8'$"),
])
def test_parameter_errors(kwargs, exc, message):
    args = {"channels_per_beat": 4, "words": 8, **kwargs}
    with pytest.raises(exc, match=message):
        ActivationStore(**args)
