"""Datapath pieces shared by the engines: stream layouts, small signal helpers, banked ROMs,
the weight store, the sparse-entry decoder and the requantiser."""
