"""The pure rules of the coalition: no I/O, no framework, no clock, no database."""
