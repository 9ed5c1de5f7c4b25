"""Climkit: its flow, sensors, pace and secrets in Home Assistant, and its provider."""
