"""Tests of Cloud Energy Meters."""
