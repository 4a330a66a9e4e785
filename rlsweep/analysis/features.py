"""Feature-space pictures of a trained run: why SND explores (the seed's t-SNE figure) and where r_int fires.

``python -m rlsweep.analysis.features <run_dir> [--out DIR] [--steps N]`` loads the run's resolved config
(``config.yaml``) and checkpoint, plays the trained policy in the run's env, embeds every visited state with the
motivation's *target* network (RND: the fixed random net; SND: the self-supervised one) and writes

* ``tsne.png``: a 2-D t-SNE projection of the target features, coloured by Montezuma room (from RAM) when the
  env has rooms, otherwise by the step within the episode;
* ``intrinsic_reward.png``: the intrinsic reward along env 0's trajectory (episode ends marked);
* ``features.npz``: the features, the 2-D points and the colour labels, for notebooks.

Only reads a run directory; knows nothing about how it was trained beyond the public builders.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from rlsweep.compute.perf import unit_frames
from rlsweep.config.files import load_config
from rlsweep.envs import make_env
from rlsweep.models import build_policy
from rlsweep.motivation import Distillation, build_motivation
from rlsweep.training.checkpoint import load_checkpoint


def collect(run_dir: Path, steps: int, num_envs: int, seed: int) -> dict[str, np.ndarray]:
    """Play the trained policy for ``steps`` agent steps in ``num_envs`` envs; return features and labels."""
    cfg = load_config(run_dir)  # what the run's job loaded
    if cfg.motivation.name == "none":
        raise SystemExit(f"{run_dir}: motivation=none has no target network to embed states with")
    device = torch.device("cpu")
    checkpoint = load_checkpoint(run_dir, device)
    if checkpoint is None:
        raise SystemExit(f"{run_dir}: no checkpoint.pt")
    envs = make_env(cfg.env, num_envs, seed)
    try:
        policy = build_policy(cfg.model.name, envs.obs_shape, envs.num_actions, cfg.model.critic_init_gain)
        policy.load_state_dict(checkpoint["policy"])
        motivation = build_motivation(cfg.motivation, envs.obs_shape, device, frame_channels=envs.frame_channels,
                                      num_envs=cfg.ppo.num_envs)  # fmt: skip
        motivation.load_state_dict(checkpoint["motivation"])
        assert isinstance(motivation, Distillation)
        rooms_of = getattr(envs, "current_rooms", None)
        obs = torch.as_tensor(envs.reset())
        episode_step = np.zeros(num_envs, dtype=np.int64)
        features, rooms, ep_steps, rewards, dones = [], [], [], [], []
        for _ in range(steps):
            with torch.no_grad():
                action = Categorical(logits=policy(unit_frames(obs)).logits).sample()
                features.append(motivation.embed(obs).numpy())
                rewards.append(motivation.reward(obs).numpy())
            room = rooms_of() if rooms_of is not None else None
            rooms.append(np.full(num_envs, -1) if room is None else room)
            ep_steps.append(episode_step.copy())
            result = envs.step(action.numpy())
            dones.append(result.done)
            episode_step = np.where(result.done, 0, episode_step + 1)
            obs = torch.as_tensor(result.obs)
    finally:
        envs.close()
    return {
        "features": np.concatenate(features),  # (steps * N, D), step-major
        "rooms": np.concatenate(rooms),
        "episode_step": np.concatenate(ep_steps),
        "reward_env0": np.array([r[0] for r in rewards]),
        "done_env0": np.array([d[0] for d in dones]),
        "num_envs": np.array(num_envs),
    }


def tsne(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, Barnes-Hut) of (n, D) features; perplexity scaled to n."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def draw(data: dict[str, np.ndarray], points: np.ndarray, keep: np.ndarray, title: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    rooms = data["rooms"][keep]
    fig, ax = plt.subplots(figsize=(7, 6))
    if (rooms >= 0).any():
        for key in np.unique(rooms):
            sel = rooms == key
            ax.scatter(points[sel, 0], points[sel, 1], s=6, label=f"level {key // 256} room {key % 256}")
        ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2)
        ax.set_title(f"{title}\ntarget features (t-SNE), coloured by room", fontsize=9)
    else:
        sc = ax.scatter(points[:, 0], points[:, 1], c=data["episode_step"][keep], s=6, cmap="viridis")
        fig.colorbar(sc, ax=ax, label="step in episode")
        ax.set_title(f"{title}\ntarget features (t-SNE), coloured by episode step", fontsize=9)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    fig.tight_layout()
    tsne_png = out / "tsne.png"
    fig.savefig(tsne_png, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.5))
    r = data["reward_env0"]
    ax.plot(np.arange(len(r)), r, lw=1.2)
    for t in np.flatnonzero(data["done_env0"]):
        ax.axvline(float(t), color="grey", ls="--", lw=0.8)
    ax.set_xlabel("agent step (env 0; dashed: episode end)")
    ax.set_ylabel("intrinsic reward")
    ax.set_title(f"{title}: intrinsic reward over a trajectory", fontsize=9)
    fig.tight_layout()
    reward_png = out / "intrinsic_reward.png"
    fig.savefig(reward_png, dpi=120)
    plt.close(fig)
    return [tsne_png, reward_png]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlsweep.analysis.features", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with config.yaml and checkpoint.pt")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <run_dir>/features)")
    parser.add_argument("--steps", type=int, default=256, help="agent steps to play per env (default 256)")
    parser.add_argument("--envs", type=int, default=8, help="parallel envs to play (default 8)")
    parser.add_argument("--max-points", type=int, default=2000, help="states in the t-SNE (random subset)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir
    out: Path = args.out or run_dir / "features"
    torch.manual_seed(args.seed)
    data = collect(run_dir, args.steps, args.envs, args.seed)
    n = data["features"].shape[0]
    rng = np.random.default_rng(args.seed)
    keep = np.sort(rng.choice(n, size=min(n, args.max_points), replace=False))
    points = tsne(data["features"][keep], args.seed)
    files = draw(data, points, keep, run_dir.name, out)
    arrays: dict[str, Any] = {"points": points, "keep": keep, **data}
    np.savez_compressed(out / "features.npz", **arrays)
    for f in files:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
