"""Tests of the FlexMeasures provider and its real server."""
