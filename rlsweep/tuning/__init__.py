"""``rlsweep tune``: tuned ablations. Each arm of an ablation grid gets the same hyperparameter search (Optuna's
TPE sampler, successive halving on the primary metric), every trial an ordinary point of the search sweep; then
each arm's chosen setting is rerun on fresh seeds in a separate confirm sweep, the only runs the verdict reads.

This package sits between :mod:`rlsweep.cli` (which imports it) and :mod:`rlsweep.launching` (which it uses to
plan, prepare and launch points): it imports launching, config and rundir, never analysis or cli.

- :mod:`rlsweep.tuning.space`: the tune file (``tune=<name>``): search space, budgets, metric; parsing and every
  check, before anything starts.
- :mod:`rlsweep.tuning.study`: Optuna's side: storage in the sweep directory, the synchronous halving pruner, the
  reading of a study into ``tune.json``'s accounting.
- :mod:`rlsweep.tuning.tuner`: the loop: arms, trials as points, rungs as launches, the confirm runs.
"""
