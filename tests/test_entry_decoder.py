# amaranth: UnusedElaboratable=no
"""Entry decoder parameters (its decoding is checked entry by entry against the golden
positions by the cocotb suite, ``sim/test_blocks.py``, and through every engine test)."""

import pytest

from hw.blocks.entry_decoder import EntryDecoder


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"code_bits": 9}, ValueError, "Code width must be an integer from 4 to 8, not 9"),
    ({"code_bits": 8.0}, TypeError, "Code width must be an integer from 4 to 8, not 8.0"),
    ({"max_channels": 0}, ValueError, "Channel count must be positive, not 0"),
    ({"max_channels": "64"}, TypeError, "Channel count must be an integer, not '64'"),
])
def test_parameter_errors(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        EntryDecoder(**{"code_bits": 8, "max_channels": 64, **kwargs})


def test_latency_and_ports():
    dec = EntryDecoder(6, 100)
    assert EntryDecoder.latency == 2
    assert len(dec.entry) == 10 and len(dec.o_code) == 6
