"""Locus Energy: its flow and entities in Home Assistant, and its provider."""
