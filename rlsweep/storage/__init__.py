"""Rollout storage: preallocated (T, N, ...) tensors on the run's device; observations stay uint8."""

from rlsweep.storage.rollout import RolloutStorage

__all__ = ["RolloutStorage"]
