"""python -m sim.classify: bad input gives one error line and exit status 2 before anything is
built or simulated (the simulation itself is ``sim/test_network.py``)."""

import pytest

from sim import classify


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("args,message", [
    (["chelsea", "--lanes", "20"], "error: Lane count must be 1, 2, 4 or a multiple of 8"),
    (["chelsea", "--channels-per-cycle", "3"], "error: Channels per cycle must be a power of two"),
    (["chelsea", "--channels-per-cycle", "4"], "error: 4 channels per cycle need at least 12 "
                                               "channels per beat"),
    (["chelsea", "--channels-per-beat", "0"], "error: Channels per beat must be from 1 to 64"),
    (["no-such-image.png"], "error: "),
    (["chelsea", "--topk", "0"], "error: --topk must be between 1 and 1000, not 0"),
    (["chelsea", "--clock-mhz", "0"], "error: --clock-mhz must be positive, not 0.0"),
    (["chelsea", "--model", "/nonexistent/model.net"], "error: "),
])
def test_bad_input_is_one_line_and_status_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert classify.main(args) == 2
    assert one_line_error(capsys).startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_channels_per_beat_below_an_image_pixel(capsys):
    """conv1 takes a pixel's three channels in one beat."""
    assert classify.main(["chelsea", "--channels-per-beat", "2"]) == 2
    assert one_line_error(capsys) == "error: Channels per beat must be from 3 to 64, not 2"
