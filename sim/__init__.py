"""cocotb regression on the generated Verilog (see ``sim/README.md``)."""
