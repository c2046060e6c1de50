"""sim.rom_files: memory initialisations become $readmemh files with the same words (that the
simulators load them right is shown by every cocotb test of a design with ROMs, e.g.
``sim/test_network.py``)."""

from sim.rom_files import externalise

VERILOG = """module top(clk);
  reg [11:0] bank0 [3:0];
  initial begin
    bank0[0] = 12'h2ec;
    bank0[1] = 12'd10;
    bank0[2] = 12'b1000_0000_0001;
    bank0[3] = 12'h0_0f;
  end
  reg [3:0] small [1:0];
  initial begin
    small[0] = 4'h1;
    small[1] = 4'h2;
  end
  reg [3:0] odd [1:0];
  initial begin
    odd[0] = 4'hx;
    odd[1] = 4'h2;
  end
endmodule
"""


def test_large_blocks_become_readmemh(tmp_path):
    text = externalise(VERILOG, tmp_path / "mem", min_words=3)
    path = tmp_path / "mem" / "mem0-bank0.hex"
    assert f'  initial $readmemh("{path}", bank0);\n' in text
    assert "bank0[0]" not in text
    # By hand: 0x2ec, 10, 0b100000000001, 0x00f, three hex digits each.
    assert path.read_text() == "2ec\n00a\n801\n00f\n"
    # Below the size, or not plain numbers: left as they were.
    assert "small[1] = 4'h2;" in text and "odd[0] = 4'hx;" in text
    assert sorted(p.name for p in (tmp_path / "mem").iterdir()) == ["mem0-bank0.hex"]


def test_nothing_to_do(tmp_path):
    assert externalise(VERILOG, tmp_path / "mem", min_words=5) == VERILOG
    assert not (tmp_path / "mem").exists()
