"""A newcomer's path through Home Assistant's own frontend, in a real browser."""
