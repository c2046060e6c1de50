"""The dataflow datapath's program: sub-convolutions, the per-layer split, unit images."""

import numpy as np
import pytest

from golden.codec import entry_positions
from golden.network import Conv
from hw.dataflow.program import (DataflowProgram, channel_entry_counts, slice_conv,
                                 split_layer)

from testkit.fire_cases import random_fire, random_qconv


def dense_codes(codes, rel, size):
    dense = np.zeros(size, np.int64)
    dense[entry_positions(rel)] = codes
    return dense


@pytest.mark.parametrize("seed", range(4))
def test_slice_keeps_every_weight_of_its_channels(seed):
    rng = np.random.default_rng(seed)
    conv = random_qconv(rng, Conv("c", 11, 7, 3, pad=1), density=float(rng.uniform(0.02, 0.9)))
    per = 7 * 9
    whole = dense_codes(conv.codes, conv.rel, 11 * per).reshape(11, per)
    for lo, hi in [(0, 11), (0, 1), (3, 8), (10, 11)]:
        codes, rel, codebook, bias = slice_conv(conv, lo, hi)
        np.testing.assert_array_equal(dense_codes(codes, rel, (hi - lo) * per).reshape(-1, per),
                                      whole[lo:hi])
        assert rel.max(initial=0) <= 15
        # every channel owns an entry, as the decoder needs
        assert set(entry_positions(rel) // per) == set(range(hi - lo))
        np.testing.assert_array_equal(bias, conv.bias[lo:hi])
        np.testing.assert_array_equal(codebook, conv.codebook)


def test_fire_split_balances_the_units():
    rng = np.random.default_rng(3)
    convs = random_fire(rng, "f", 16, 8, 6, 10, density=0.4)
    assert split_layer(convs, balance="strict") == (0, 6)
    work = np.concatenate([channel_entry_counts(convs[1]), channel_entry_counts(convs[2])])
    a, k = split_layer(convs, balance="expand")
    cost = [max(work[:c].sum(), work[c:].sum()) for c in range(work.size + 1)]
    assert a == 0 and cost[k] == min(cost) <= cost[6]
    # "all": the squeeze unit takes expand channels after its squeeze; weighted by passes
    head = channel_entry_counts(convs[0]).sum()
    for passes in [(1, 1, 1), (1, 2, 2), (2, 1, 4)]:
        a, b = split_layer(convs, passes=passes)
        cost = {(x, y): max((head + work[:x].sum()) * passes[0], work[x:y].sum() * passes[1],
                            work[y:].sum() * passes[2])
                for x in range(17) for y in range(x, 17)}
        assert cost[(a, b)] == min(cost.values())
    with pytest.raises(ValueError, match="balance must be one of"):
        split_layer(convs, balance=True)


def test_plain_split_is_the_best_three_way_cut():
    rng = np.random.default_rng(4)
    conv = random_qconv(rng, Conv("p", 9, 5, 1), density=0.5)
    a, b = split_layer([conv], balance="strict")
    work = channel_entry_counts(conv)
    cost = {(x, y): max(work[:x].sum(), work[x:y].sum(), work[y:].sum())
            for x in range(10) for y in range(x, 10)}
    assert cost[(a, b)] == min(cost.values())


@pytest.mark.parametrize("balance", ["strict", "expand", "all"])
def test_units_cover_each_layers_channels_once(balance):
    rng = np.random.default_rng(5)
    fire = random_fire(rng, "f", 4, 2, 8, 8, density=0.5)
    plain = random_qconv(rng, Conv("p", 7, 16, 1), density=0.5)
    program = DataflowProgram([("f", 4, 4, *fire), ("p", 3, 3, plain)], balance=balance)
    for index, channels in ((0, 16), (1, 7)):
        ranges = [(u.layers[index].out_lo, u.layers[index].out_hi) for u in program.units]
        assert ranges[0][0] == 0 and ranges[-1][1] == channels
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(2))
        assert (ranges[0][1], ranges[1][1]) == program.splits[index]
    sq, one, three = (u.layers[0] for u in program.units)
    assert sq.slots[0].entry_count >= fire[0].codes.size and sq.reads_x
    assert sq.dual == (sq.out_hi > 0) == sq.writes_out
    if balance == "strict":
        assert not sq.dual and one.slots[2] is None and three.slots[1] is None
    if balance == "all":    # a light squeeze (4 -> 2 channels): the squeeze unit also expands
        assert sq.dual
    # the units' stores hold exactly their sub-convolutions
    for unit in program.units:
        assert unit.entries.size >= sum(u.entry_count for u in unit.layers)
