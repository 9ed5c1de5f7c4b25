"""Simulated clouds for tests and demos: ``Simulator`` serves them all on one port."""

from .app import Simulator

__all__ = ["Simulator"]
