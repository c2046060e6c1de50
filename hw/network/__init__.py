"""Whole-network blocks: streaming max-pool, global sum (and, to come, the conv1 patch
streamer, the activation store and the network sequencer)."""
