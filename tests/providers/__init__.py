"""Tests of the provider layer (custom_components/.../providers) without Home Assistant."""
