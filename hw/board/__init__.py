"""The board side: UART, the host-link protocol (constants only, importable without Amaranth),
the link, the board top and the PC-side driver."""
