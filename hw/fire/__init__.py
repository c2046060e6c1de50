"""The shared-lane Fire engine: its program (descriptors and memory images), the engine (wiring
only), its sequencer, entry pipeline, input loader and output drainer, the line buffer, and the
exact cycle model."""
