"""Copper Labs: the provider against the simulator (issue 10)."""
