"""The entry points, the top layer: ``python sweep.py`` (:mod:`~rlsweep.cli.sweep`: plan the grid, run it through
a launcher), the ``rlsweep`` command (:mod:`~rlsweep.cli.commands`: status, report, and dispatch to seeds and
eval) and ``rlsweep seeds`` (:mod:`~rlsweep.cli.seeds`: the sequential test's workflow, which reads a sweep with
the analysis and runs more seeds with the launchers). Below it, :mod:`rlsweep.launching` and
:mod:`rlsweep.analysis` never import each other's upper parts, and nothing below imports this package."""
