"""Sensors: gap repair of the bars assets (downstream assets follow declarative automation)."""

from jutsu_pipeline.sensors.gaps import build_gap_sensor

__all__ = ["build_gap_sensor"]
