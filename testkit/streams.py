"""Amaranth-simulator stream drivers for block tests: send beats with random idle cycles,
receive them under random back-pressure (valid/ready as ``amaranth.lib.stream`` defines)."""

__all__ = ["send_beats", "receive_until_last"]


async def send_beats(ctx, port, beats, rng, *, valid_prob=1.0, framed=True):
    """Send each row of ``beats`` on ``port`` (an ``In`` stream of a beat layout); before each
    beat, idle cycles while ``rng.random() > valid_prob``. With ``framed``, ``first``/``last``
    mark the first and last beat."""
    for n, beat in enumerate(beats):
        while rng.random() > valid_prob:
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload.data, [int(v) for v in beat])
        if framed:
            ctx.set(port.payload.first, int(n == 0))
            ctx.set(port.payload.last, int(n == len(beats) - 1))
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def receive_until_last(ctx, port, rng, *, ready_prob=1.0, fields=("data", "first", "last")):
    """Take transfers from ``port`` (an ``Out`` stream), ready with probability ``ready_prob``
    each cycle, up to and including the one with ``last`` set; return a tuple of ``fields`` of
    each (array fields as lists of ints)."""
    got = []
    while True:
        ready = int(rng.random() < ready_prob)
        ctx.set(port.ready, ready)
        signals = [getattr(port.payload, name) for name in fields]
        sampled = await ctx.tick().sample(port.valid, *signals)
        valid, values = sampled[-1 - len(signals)], list(sampled[-len(signals):])
        if ready and valid:
            values = [list(map(int, v)) if not isinstance(v, int) else v for v in values]
            got.append(tuple(values))
            if values[fields.index("last")]:
                ctx.set(port.ready, 0)
                return got
