"""Launching: the Hydra task function behind sweep.py, the grid pre-flight and dry run, the rlsweep CLI."""
