"""Stream payload layouts shared by the engines, the host link and the testbenches."""

from amaranth.hdl import unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

__all__ = ["start_layout", "beat_layout", "engine_members"]


def start_layout():
    """Payload of an engine's ``start`` stream: which layer, and the height/width of this run."""
    return data.StructLayout({"layer": unsigned(4), "height": unsigned(8), "width": unsigned(8)})


def beat_layout(channels_per_beat):
    """Payload of the activation streams: ``channels_per_beat`` uint8 channels + framing."""
    return data.StructLayout({
        "data": data.ArrayLayout(unsigned(8), channels_per_beat),
        "first": 1,
        "last": 1,
    })


def engine_members(channels_per_beat):
    """The ports every engine has (the shared and dataflow Fire engines, the step engine):
    ``start``, the ``i`` and ``o`` activation streams, ``done`` and ``busy``."""
    return {
        "start": In(stream.Signature(start_layout())),
        "i": In(stream.Signature(beat_layout(channels_per_beat))),
        "o": Out(stream.Signature(beat_layout(channels_per_beat))),
        "done": Out(1),
        "busy": Out(1),
    }
