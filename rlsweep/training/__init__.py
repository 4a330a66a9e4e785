"""The one training loop (PPO + any motivation), seeding, and atomic checkpoint / resume."""

from rlsweep.training.checkpoint import load_checkpoint, save_checkpoint
from rlsweep.training.loop import train, train_seeds

__all__ = ["load_checkpoint", "save_checkpoint", "train", "train_seeds"]
