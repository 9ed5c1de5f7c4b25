"""End-to-end tests: a real Home Assistant process next to the simulator."""
