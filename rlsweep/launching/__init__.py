"""Launching: from a grid to runs. The plan (:mod:`~rlsweep.launching.plan`: compose and check every point
before anything starts, the dry run's table), what every launch does first (:mod:`~rlsweep.launching.points`:
decide what runs, write configs and records, the status table), the launchers behind one interface
(:mod:`~rlsweep.launching.launcher`: local processes, SLURM arrays) and the job a launcher starts
(:mod:`~rlsweep.launching.job`: one point, or several seeds, trained under the point's lock). The command lines
that drive it live one layer up, in :mod:`rlsweep.cli`."""
