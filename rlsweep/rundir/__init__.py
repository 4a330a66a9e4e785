"""A run directory's state, shared by the launchers, the job, tracking and the report: the record ``run.json``
(:mod:`~rlsweep.rundir.record`: status, attempts, history, written atomically under a lock), the point's lock
with its heartbeat (:mod:`~rlsweep.rundir.lock`: who runs the point now) and the one reader of ``metrics.jsonl``
(:mod:`~rlsweep.rundir.metrics`). Nothing here knows about training, configs' meaning or launchers."""
