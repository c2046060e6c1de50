"""The build flow: layer choice (``layers``), the block-RAM planner (``planner``) and the
memories it plans (``memories``), synthesis (``synth``, ``yowasp``), the build itself
(``build``), log parsing (``logs``), the report writer (``report``) and output files
(``outputs``)."""
