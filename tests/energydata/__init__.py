"""Energydata.dk: its flows, entities, actions and MQTT in Home Assistant, and its provider."""
