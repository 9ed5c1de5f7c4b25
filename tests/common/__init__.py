"""Tests of the generic layer: flow, setup, statistics importer, limiter, tokens, rules."""
