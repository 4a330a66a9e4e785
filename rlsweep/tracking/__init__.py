"""Where a run's numbers go: the local metrics store, Weights & Biases, the console, and run.json.

1. ``metrics.jsonl`` in the run directory is the local store: one JSON object per logged iteration, written
   and flushed as the run goes (pandas reads it with ``read_json(lines=True)``). On resume, lines past the
   checkpoint's step are dropped, because those iterations run again: no duplicates, no gaps.
2. W&B (offline unless an API key is configured) receives the same lines, but only once a checkpoint covers
   them (``commit``), so a killed run that resumes continues its W&B run without repeating steps.
   Every metric is plotted against ``global_step`` (agent steps summed over envs), and W&B's own ``_step``
   *is* ``global_step``, so the segments of a resumed offline run sync in order. Group = sweep name;
   config and tags carry every group choice, the preset name, the seed and the code version
   (``gitinfo``: commit + dirty flag of the checkout holding the package, ``None`` without git).
3. ``run.json`` says what the run is (name, seed, group choices) and how far it got (status, global_step,
   W&B id and project, git commit); reports and sweep status read it.
"""

from rlsweep.rundir.metrics import read_metrics
from rlsweep.tracking.gitinfo import GitInfo, code_version, git_info
from rlsweep.tracking.tracker import Tracker, wandb_config, wandb_mode, wandb_tags

__all__ = ["GitInfo", "Tracker", "code_version", "git_info", "read_metrics", "wandb_config", "wandb_mode", "wandb_tags"]
