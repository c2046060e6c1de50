"""Whole-network blocks: the conv1 patch streamer, the streaming max-pool and the global sum
(to come: the activation store and the network sequencer that wire them to the engine)."""
