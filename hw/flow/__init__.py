"""The build flow: layer choice, the block-RAM planner and the memories it plans, synthesis,
place-and-route and log parsing, and the report writer."""
