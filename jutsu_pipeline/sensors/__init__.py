"""Sensors: gap repair of the bars assets (downstream assets follow declarative automation)."""
