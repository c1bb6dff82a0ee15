"""The commands, one module per group; each parses options, calls one service and renders the result."""
