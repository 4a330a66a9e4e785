"""rlsweep's Hydra launcher plugins (Hydra only loads launchers from the ``hydra_plugins`` package).

The classes here are thin: the work is in :mod:`rlsweep.launching.local` and :mod:`rlsweep.launching.slurm`.
Selected with ``hydra/launcher=local`` (the default) or ``hydra/launcher=slurm``.
"""
