"""Amaranth generator of the Fire engine, its weight store and board builds."""
