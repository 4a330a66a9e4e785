"""Operator-level profile (torch.profiler) of the loop's two hot paths for one config and device.

    python benchmarks/profile_ops.py --device cpu [overrides ...]          # CPU preset of throughput.py
    python benchmarks/profile_ops.py --preset seed --device cuda           # the seed's sizes on a GPU

Profiles (a) ``--steps`` collection steps without the env (policy forward + sample, the motivation's statistics
and reward, copies, storage insert) and (b) ``--minibatches`` PPO minibatch steps with the motivation's update,
exactly as ``throughput.py`` times them, and prints the top operators by self time for each. Writes
the tables to the file ``--out`` when given.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as tp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(tp.PRESETS), default="cpu")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default="")
    args, user = p.parse_known_args()
    overrides = [*tp.PRESETS[args.preset], "logger=none", f"device={args.device}", *user]
    cfg = tp.compose_config(overrides)

    import torch
    from torch.distributions import Categorical
    from torch.profiler import ProfilerActivity, profile, record_function

    from rlsweep.agent.ppo import Batch
    from rlsweep.training.loop import _update_on as update_on
    from rlsweep.training.seeding import seed_everything, select_device

    device = select_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed, cfg.debug.deterministic, device)
    n = cfg.ppo.num_envs
    env, frames = tp.bench_env(cfg.env, n, cfg.seed, cfg.ppo.num_steps, 1)
    parts = tp.build_parts(cfg, tuple(env["obs_shape"]), env["num_actions"], env["frame_channels"], device)
    tp.fill_rollout(cfg, parts, frames, device)
    policy, updater, motivation, storage = parts
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    report: list[str] = [f"# torch.profiler: {' '.join(overrides)} (torch threads {torch.get_num_threads()})\n"]

    def collect(k: int) -> None:
        for step in range(k):
            o = torch.as_tensor(frames[step % len(frames)], device=device)
            with torch.no_grad():
                with record_function("policy"):
                    out = policy(o.float() / 255.0)
                    dist = Categorical(logits=out.logits)
                    action = dist.sample()
                with record_function("motivation.update_stats"):
                    motivation.update_stats(o)
                with record_function("motivation.reward"):
                    r_int = motivation.reward(o)
            with record_function("copies+insert"):
                action.cpu().numpy()
                storage.insert(step % cfg.ppo.num_steps, o, action, dist.log_prob(action), out.value_ext,
                               out.value_int, r_int)  # fmt: skip

    batch = Batch(
        obs=storage.flat_obs(),
        actions=storage.actions.reshape(-1),
        logprobs=storage.logprobs.reshape(-1),
        advantages=storage.rewards_int.reshape(-1),
        returns_ext=storage.values_ext.reshape(-1),
        returns_int=storage.values_int.reshape(-1),
    )
    one_epoch = cfg.ppo.minibatch_size * args.minibatches

    def update() -> None:
        # One epoch over a sub-batch of ``--minibatches`` minibatches, through PPOUpdater itself.
        sub = Batch(*(getattr(batch, f)[:one_epoch] for f in ("obs", "actions", "logprobs", "advantages",
                                                               "returns_ext", "returns_int")))  # fmt: skip
        epochs = updater.cfg.update_epochs
        updater.cfg.update_epochs = 1
        try:
            updater.update(sub, after_minibatch=partial(update_on, motivation, storage))
        finally:
            updater.cfg.update_epochs = epochs

    for name, fn in (("collection (no env)", partial(collect, args.steps)), ("update", update)):
        if name == "update":
            # A frozen target's features of the rollout (perf.target_features_per_update), computed once per
            # update as the loop does, outside the profile: a minibatch's share of that pass is small.
            motivation.begin_update(storage.flat_obs())
        fn()  # warm-up
        with profile(activities=activities) as prof:
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
        report.append(f"\n## {name}\n")
        report.append(prof.key_averages().table(sort_by=sort, row_limit=args.top))
    text = "\n".join(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
