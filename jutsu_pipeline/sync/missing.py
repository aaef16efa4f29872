"""Kept for imports: the planner (jutsu_pipeline.sync.planner) decides what is missing and how to run it."""

from __future__ import annotations

from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG, PartitionRange, plan_ranges

__all__ = ["RANGE_END_TAG", "RANGE_START_TAG", "PartitionRange", "plan_ranges"]
