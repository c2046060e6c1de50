"""The dataflow Fire datapath (squeeze PE array || expand-1x1 || expand-3x3 units)."""
