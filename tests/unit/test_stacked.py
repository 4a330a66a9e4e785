"""Several seeds in one process (``seeds_per_process``): the stacked update is each seed's own update.

Each test builds k lone pieces (policy and PPO updater, RND and SND motivations), keeps copies, stacks the
originals (:mod:`rlsweep.compute.stacked`), feeds both the same data and compares. Where the lone and the stacked
run would
draw random numbers differently (minibatch order, the predictor mask) the configs take that away: one minibatch
is a whole rollout (its mean loss does not depend on the order), and the mask keeps everything; the SND test
instead starts each lone run's global generator where its seed's generator starts.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import torch
from tolerance import adam_atol, gradient_depth, reordered_depth, rounding

from rlsweep.agent.ppo import Batch, PPOUpdater
from rlsweep.compute.stacked import (
    SeedStack,
    load_optimizer_states,
    load_seed_states,
    optimizer_states,
    seed_rows,
    seed_states,
)
from rlsweep.config.schema import MotivationConfig, PerfConfig, PPOConfig
from rlsweep.models import build_policy
from rlsweep.motivation import build_motivation
from rlsweep.motivation.base import MotivationBatch

OBS = (4, 32, 32)
ACTIONS = 5
T, N, K = 8, 4, 3


def seed_major(per_seed: list[torch.Tensor]) -> torch.Tensor:
    """Per-seed (T, N, ...) rollouts as the stacked loop lays them out: (T, K N, ...) flattened to rows."""
    return torch.cat(per_seed, dim=1).reshape(-1, *per_seed[0].shape[2:])


def rollout(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "obs": torch.randint(0, 256, (T, N, *OBS), dtype=torch.uint8, generator=generator),
        "actions": torch.randint(0, ACTIONS, (T, N), generator=generator),
        "logprobs": -torch.rand(T, N, generator=generator) - 1.0,
        "advantages": torch.randn(T, N, generator=generator),
        "returns_ext": torch.randn(T, N, generator=generator),
        "returns_int": torch.randn(T, N, generator=generator),
    }


def flat(r: dict[str, torch.Tensor]) -> Batch:
    return Batch(**{key: v.reshape(-1, *v.shape[2:]) for key, v in r.items()})


@pytest.mark.parametrize("max_grad_norm", [10.0, 0.1])  # 0.1: every seed's gradient is clipped, each by its own norm
def test_a_stacked_ppo_update_is_each_seeds_own_update(max_grad_norm: float) -> None:
    """One minibatch step: each seed's (clipped) gradient, statistics and Adam moments are a lone run's.

    Gradients are compared, not parameters after several steps: Adam moves an element by about lr whatever its
    gradient's size, so the rounding of a near-zero gradient element could flip a parameter by 2 lr.
    """
    cfg = PPOConfig(num_envs=N, num_steps=T, update_epochs=1, minibatch_size=T * N, minibatch_sampling="permutation",
                    max_grad_norm=max_grad_norm)  # fmt: skip
    policies = []
    for seed in range(K):
        torch.manual_seed(seed)
        policies.append(build_policy("A", OBS, ACTIONS, 0.1))
    lone = [PPOUpdater(copy.deepcopy(p), cfg) for p in policies]
    stacked = PPOUpdater(SeedStack(policies), cfg, seeds=K)
    g = torch.Generator().manual_seed(0)
    rollouts = [rollout(g) for _ in range(K)]

    lone_stats = [u.update(flat(r)) for u, r in zip(lone, rollouts, strict=True)]
    joined = Batch(**{key: seed_major([r[key] for r in rollouts]) for key in rollouts[0]})
    stats = stacked.update(joined)

    norms = torch.stack([s["ppo/grad_norm"] for s in lone_stats])
    assert bool((norms > max_grad_norm).all()) == (max_grad_norm < 1) and len(set(norms.tolist())) == K
    # The statistics, relative: the forward pass (every layer's sums reordered) and the mean over T N samples; the
    # gradient norm the gradients' bound (T N rows through the first convolution's 7 x 7 outputs; the norm's own
    # pairwise sums add ~2 log2(n) roundings: negligible). The policy loss (and the total) sums terms that cancel
    # (|r A| <= 1.8 x 3): also absolute, of their size, 8. Another seed's statistics differ by 0.1 or more (but the
    # entropy, near log 5 for every seed: it cannot tell seeds apart, the others do).
    forward = reordered_depth(policies[0]) + T * N
    depth = gradient_depth(policies[0], rows_positions=T * N * 7 * 7) + T * N
    for j in range(K):
        for key in ("loss/total", "loss/policy", "loss/value_ext", "loss/entropy", "ppo/approx_kl", "ppo/grad_norm"):
            key_depth = depth if key == "ppo/grad_norm" else forward
            size = 8.0 if key in ("loss/total", "loss/policy") else 0.0
            torch.testing.assert_close(stats[key][j], lone_stats[j][key], rtol=rounding(torch.float32, key_depth),
                                       atol=rounding(torch.float32, key_depth, scale=size), msg=key)  # fmt: skip
        # the stack's parameters come in the lone network's order (what lines the optimiser states up)
        own = dict(zip([n for n, _ in lone[j].policy.named_parameters()], stacked.policy.parameters(), strict=True))
        for name, param in lone[j].policy.named_parameters():
            assert param.grad is not None
            # the gradients' bound, twice: clipping multiplies every element by max_grad_norm / norm, which carries
            # the norm's error. Another seed's or a wrongly clipped gradient is off by 10 % or more.
            atol = rounding(torch.float32, 2 * depth, scale=float(param.grad.detach().abs().max()))
            torch.testing.assert_close(own[name].grad[j], param.grad, rtol=0, atol=atol, msg=f"seed {j}: {name}")
    # each seed's Adam state is a lone Adam's, and loads into one
    for j, state in enumerate(optimizer_states(stacked.optimizer, K)):
        lone_state = lone[j].optimizer.state_dict()
        for i, moments in lone_state["state"].items():
            # (1 - beta1) g after one step: the (clipped) gradient's bound and one rounding more
            atol = rounding(torch.float32, 2 * depth + 1, scale=float(moments["exp_avg"].detach().abs().max()))
            torch.testing.assert_close(state["state"][i]["exp_avg"], moments["exp_avg"], rtol=0, atol=atol)
        PPOUpdater(copy.deepcopy(lone[j].policy), cfg).optimizer.load_state_dict(state)
    # and lone runs' states load into a stack (a group resuming its seeds' checkpoints)
    again = PPOUpdater(SeedStack([copy.deepcopy(u.policy) for u in lone]), cfg, seeds=K)
    load_optimizer_states(again.optimizer, [u.optimizer.state_dict() for u in lone])  # copies: exact
    torch.testing.assert_close(again.optimizer.state_dict()["state"][0]["exp_avg"][1],
                               lone[1].optimizer.state_dict()["state"][0]["exp_avg"], rtol=0, atol=0)  # fmt: skip


@pytest.mark.parametrize("direction", ["group to alone", "alone to group"])
def test_adam_moments_moved_between_a_group_and_a_lone_run_step_as_they_would_have(direction: str) -> None:
    """A lone run's convolution weights are NHWC (``perf.channels_last``), stacked seeds' NCHW, and the Adam
    moments in a checkpoint keep the layout they were saved in. Loaded across (a seed of a group resumed alone,
    or lone runs resumed as a group), they take their parameters' layout, and the next fused Adam step moves
    every weight as it would have moved without the checkpoint (it walks moments and weights in memory order:
    before, on the CPU, it applied moments to the wrong weights)."""
    cfg = PPOConfig(num_envs=N, num_steps=T, update_epochs=1, minibatch_size=T * N, learning_rate=1e-3)
    policies = []
    for seed in range(K):
        torch.manual_seed(seed)
        policies.append(build_policy("A", OBS, ACTIONS, 0.1))
    lone = [PPOUpdater(copy.deepcopy(p), cfg) for p in policies]  # the defaults: NHWC weights, fused Adam
    stacked = PPOUpdater(SeedStack([copy.deepcopy(p) for p in policies]), cfg, seeds=K)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in lone[0].policy.parameters())  # NHWC weights
    g = torch.Generator().manual_seed(0)

    def step_all(lones: list[PPOUpdater], group: PPOUpdater) -> None:
        """One Adam step of each lone run and of the group, with the same random gradient for seed j."""
        grads = [[torch.randn(p.shape, generator=g) for p in u.policy.parameters()] for u in lones]
        for u, own in zip(lones, grads, strict=True):
            for p, grad in zip(u.policy.parameters(), own, strict=True):
                p.grad = grad.to(memory_format=torch.channels_last) if p.dim() == 4 else grad
            u.optimizer.step()
        for i, p in enumerate(group.policy.parameters()):
            p.grad = torch.stack([own[i] for own in grads])
        group.optimizer.step()

    step_all(lone, stacked)
    step_all(lone, stacked)  # moments worth keeping
    if direction == "group to alone":
        policies_now = seed_states(stacked.policy, K)
        resumed = []
        for j, state in enumerate(optimizer_states(stacked.optimizer, K)):
            u = PPOUpdater(copy.deepcopy(lone[j].policy), cfg)
            u.policy.load_state_dict(policies_now[j])
            load_optimizer_states(u.optimizer, [state])
            resumed.append(u)
        step_all(resumed, stacked)
        lones, group = resumed, stacked
    else:
        group = PPOUpdater(SeedStack([copy.deepcopy(p) for p in policies]), cfg, seeds=K)  # built as set_up does
        load_seed_states(group.policy, [u.policy.state_dict() for u in lone])
        # copies, as a checkpoint gives: a live state_dict shares its step counts with the lone optimisers
        load_optimizer_states(group.optimizer, [copy.deepcopy(u.optimizer.state_dict()) for u in lone])
        step_all(lone, group)
        lones = lone
    # The same gradients both ways: only the Adam arithmetic of 3 steps differs (fused on NHWC weights, for-each on
    # the stack). Moments applied to the wrong weights would move them by about lr.
    rtol, atol = rounding(torch.float32, depth=3), adam_atol(3, grad_depth=0, lr=cfg.learning_rate)
    for j, u in enumerate(lones):
        for name, p, q in zip(dict(u.policy.named_parameters()), u.policy.parameters(), group.policy.parameters(),
                              strict=True):  # fmt: skip
            torch.testing.assert_close(p, q[j], rtol=rtol, atol=atol, msg=f"seed {j}: {name}")


def stacked_and_lone(cfg: MotivationConfig, first_draw_seed: int, kept_rows: bool = True) -> tuple[Any, list[Any]]:
    """K motivations built from seeds 0..K-1, stacked (seed j drawing from a generator seeded
    ``first_draw_seed + j``), and a lone copy of each taken before stacking.

    The lone nets are built in the stack's layout (NCHW): Adam turns layout rounding in near-zero gradients into
    1e-3 relative steps, which would hide what these tests look for (each seed's own statistics and networks).
    """
    nchw = PerfConfig(channels_last=False, predictor_kept_rows=kept_rows)
    members = []
    for seed in range(K):
        torch.manual_seed(seed)
        members.append(build_motivation(cfg, OBS, torch.device("cpu"), perf=nchw, num_envs=N))
    lone = [copy.deepcopy(m) for m in members]
    members[0].stack(members[1:], [torch.Generator().manual_seed(first_draw_seed + j) for j in range(K)])
    return members[0], lone


def test_stacked_rnd_keeps_each_seeds_statistics_rewards_and_predictor() -> None:
    cfg = MotivationConfig(name="rnd", update_proportion=1.0, normalise_int_reward=True, obs_norm="mean_std",
                           learning_rate=1e-3)  # fmt: skip
    stacked, lone = stacked_and_lone(cfg, first_draw_seed=0)
    g = torch.Generator().manual_seed(1)
    # each seed sees frames of its own brightness, so per-seed statistics differ clearly from pooled ones
    steps = [[torch.randint(0, 64 * (j + 1), (N, *OBS), dtype=torch.uint8, generator=g) for j in range(K)]
             for _ in range(3)]  # fmt: skip
    for step in steps:
        for m, obs in zip(lone, step, strict=True):
            m.update_stats(obs)
        stacked.update_stats(torch.cat(step))
    rewards = stacked.reward(torch.cat(steps[-1]))
    # exact: every r_int here is clipped to 1 (prediction errors of 1000-1400 over a std of 30-100 are far above it)
    lone_rewards = torch.cat([m.reward(o) for m, o in zip(lone, steps[-1], strict=True)])
    torch.testing.assert_close(rewards, lone_rewards, rtol=0, atol=0)

    rows = torch.arange(2 * N)  # each seed's first two steps, in its own (T, N) numbering
    per_seed = [torch.stack([steps[0][j], steps[1][j]]).reshape(-1, *OBS) for j in range(K)]
    obs = torch.cat([p[rows] for p in per_seed])
    stats = stacked.update(MotivationBatch.from_obs(obs))
    lone_stats = [m.update(MotivationBatch.from_obs(p[rows])) for m, p in zip(lone, per_seed, strict=True)]
    # both networks' sums reordered, twice for the square, and the 2 N rows x 512 features' mean; relative
    loss_rtol = rounding(torch.float32, depth=2 * reordered_depth(lone[0].target, lone[0].predictor) + 2 * N * 512)
    for j in range(K):
        torch.testing.assert_close(stats["loss/motivation"][j], lone_stats[j]["loss/motivation"], rtol=loss_rtol,
                                   atol=0)  # fmt: skip
    states = stacked.state_dicts()
    # one Adam step from gradients of 2 N rows through the first convolution's 7 x 7 outputs
    rtol, atol = (
        rounding(torch.float32, depth=1),
        adam_atol(
            1, gradient_depth(lone[0].target, lone[0].predictor, rows_positions=2 * N * 7 * 7), lr=cfg.learning_rate
        ),
    )
    for j in range(K):
        want = lone[j].state_dict()
        assert set(states[j]) == set(want)
        for name, value in want["predictor"].items():
            torch.testing.assert_close(states[j]["predictor"][name], value, rtol=rtol, atol=atol)
        # frames / 255 in [0, 1]: each step's float32 batch mean of N (N roundings, summed in another order over the
        # stack's seed blocks), 3 steps merged in float64: 12, so 16. Another seed's frames are 2 times brighter.
        torch.testing.assert_close(states[j]["obs_rms"]["mean"], want["obs_rms"]["mean"], rtol=0,
                                   atol=rounding(torch.float32, depth=16))  # fmt: skip
        # The variance of N raw rewards (1000-1400, their spread down to 1/38 of their size): the rewards' own bound
        # (the networks' sums reordered, squared, 512 terms) and the batch mean's N roundings, 40 times larger on
        # the deviations, doubled by the square. Another seed's variance differs by a factor of 2 or more.
        reward_var = rounding(torch.float32, depth=2 * 40 * (2 * reordered_depth(m.target, m.predictor) + 512 + N))
        torch.testing.assert_close(states[j]["reward_rms"]["var"], want["reward_rms"]["var"], rtol=reward_var, atol=0)
        lone[j].load_state_dict(states[j])  # a seed's state is a lone run's: it loads into one


@pytest.mark.parametrize("kept_rows", [True, False], ids=["kept-rows", "all-rows"])
def test_a_stacked_sample_mask_trains_each_seed_as_its_lone_run(kept_rows: bool) -> None:
    """CleanRL's per-sample predictor mask with K stacked seeds: each seed keeps the rows its own generator keeps,
    and with perf.predictor_kept_rows its predictor (and target) run on those rows only, seed by seed, as its
    lone run's do. Two updates: the same losses, kept fractions and predictors as K lone runs."""
    cfg = MotivationConfig(name="rnd", mask="sample", update_proportion=0.25, obs_norm="mean_std",
                           learning_rate=1e-3)  # fmt: skip
    stacked, lone = stacked_and_lone(cfg, first_draw_seed=7, kept_rows=kept_rows)
    seen: list[int] = []
    for m in [stacked, *lone]:
        m.predictor.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    g = torch.Generator().manual_seed(3)
    per_seed = [torch.randint(0, 64 * (j + 1), (T, N, *OBS), dtype=torch.uint8, generator=g) for j in range(K)]
    for t in range(T):
        for m, frames in zip(lone, per_seed, strict=True):
            m.update_stats(frames[t])
        stacked.update_stats(torch.cat([frames[t] for frames in per_seed]))
    rollout = seed_major(per_seed)
    rows = [torch.arange(16), torch.arange(8, 24)]  # 16 of each seed's 32 samples: 4 kept on average
    lone_rng: dict[int, torch.Tensor] = {}
    kept_counts: set[int] = set()
    for update in range(2):
        idx = seed_rows([rows[update]] * K, N)
        seen.clear()
        stats = stacked.update(MotivationBatch.from_obs(rollout[idx]))
        assert seen == ([] if kept_rows else [K * 16])  # kept rows go seed by seed (SeedStack.each), not stacked
        for j, m in enumerate(lone):
            torch.manual_seed(7 + j) if update == 0 else torch.set_rng_state(lone_rng[j])
            own = per_seed[j].reshape(-1, *OBS)
            seen.clear()
            lone_stats = m.update(MotivationBatch.from_obs(own[rows[update]]))
            lone_rng[j] = torch.get_rng_state()
            kept = round(lone_stats["motivation/mask_kept"].item() * 16)
            assert seen == [kept if kept_rows else 16]  # the lone run itself: kept rows only, or every row
            kept_counts.add(kept)
            assert stats["motivation/mask_kept"][j].item() == lone_stats["motivation/mask_kept"].item()
            if kept_rows:  # seed j's kept rows through its own slice: its lone run's pass, to the bit
                assert torch.equal(stats["loss/motivation"][j], lone_stats["loss/motivation"])
            else:  # one vmapped pass over every seed's rows: the grouped kernels round differently
                # both networks' sums reordered, twice for the square, and the 16 rows x 512 features' sum (the
                # second update's Adam-step differences move the loss only to second order)
                loss_rtol = rounding(torch.float32, 2 * reordered_depth(m.target, m.predictor) + 16 * 512)
                torch.testing.assert_close(stats["loss/motivation"][j], lone_stats["loss/motivation"],
                                           rtol=loss_rtol, atol=0.0)  # fmt: skip
    assert len(kept_counts) > 1  # the seeds kept different numbers of rows, which one vmapped pass cannot take
    states = stacked.state_dicts()
    # two Adam steps from gradients of 16 rows through the first convolution's 7 x 7 outputs
    rtol, atol = (
        rounding(torch.float32, depth=2),
        adam_atol(
            2, gradient_depth(lone[0].target, lone[0].predictor, rows_positions=16 * 7 * 7), lr=cfg.learning_rate
        ),
    )
    for j in range(K):
        for name, value in lone[j].state_dict()["predictor"].items():
            torch.testing.assert_close(states[j]["predictor"][name], value, rtol=rtol, atol=atol)


def test_each_runs_seed_js_network_on_block_j_and_trains_slice_j() -> None:
    nets = []
    for seed in range(K):
        torch.manual_seed(seed)
        nets.append(torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ELU(), torch.nn.Linear(5, 2)))
    stacked = SeedStack(nets)
    blocks = [torch.randn(n, 6) for n in (3, 0, 5)]  # any sizes, an empty one included
    outs = stacked.each("forward", blocks)
    for net, x, out in zip(nets, blocks, outs, strict=True):
        assert torch.equal(out, net(x))  # a lone network's pass, to the bit
    sum(o.sum() for o in outs).backward()  # type: ignore[union-attr]
    weight = stacked.get_parameter("0__weight")
    assert weight.grad is not None and torch.count_nonzero(weight.grad[1]) == 0  # seed 1 saw no rows
    nets[2][0].weight.grad = None
    nets[2](blocks[2]).sum().backward()
    # exact: each() ran seed 2's network as a lone pass (equal to the bit, above), so the same backward
    torch.testing.assert_close(weight.grad[2], nets[2][0].weight.grad, rtol=0, atol=0)
    with pytest.raises(ValueError, match="2 blocks for 3 seeds"):
        stacked.each("forward", blocks[:2])


def test_seed_rows_put_each_seeds_own_samples_in_its_block() -> None:
    # seed j's env n at step t sits in column j N + n of the (T, K N) rollout
    rollout = torch.arange(T * K * N).reshape(T, K * N)
    local = [torch.tensor([0, N + 1, T * N - 1]) for _ in range(K)]  # (t 0, n 0), (t 1, n 1), (t T-1, n N-1)
    rows = seed_rows(local, N).reshape(K, -1)
    for j in range(K):
        own = rollout[:, j * N : (j + 1) * N].reshape(-1)
        assert rollout.reshape(-1)[rows[j]].tolist() == own[local[j]].tolist()


SND_CONFIGS = {
    "snd_v": MotivationConfig(name="snd_v", network="c", target_loss="mse", target_batch_size=8),
    "snd_v-vicreg": MotivationConfig(name="snd_v", network="c", target_loss="vicreg", target_batch_size=8),
    "snd_vic": MotivationConfig(name="snd_vic", network="vic", target_loss="vicreg"),
    # the spread term weighted up (paper 1e-4) so that a seed taking another seed's statistics would show
    "snd_std": MotivationConfig(name="snd_std", network="std", target_loss="stdim", stdim_std_coef=1.0),
}


@pytest.mark.parametrize("variant", list(SND_CONFIGS))
def test_stacked_snd_trains_each_seeds_own_target_from_its_own_draws(variant: str) -> None:
    """Two updates of K stacked SND motivations against K lone ones whose global generator starts where each
    seed's does: the same predictor mask, pairs and augmentations (SND-V), per-seed batch statistics (VICReg,
    ST-DIM's spread), so the same losses, networks, heads and Adam moments, and states a lone run loads."""
    cfg = dataclasses.replace(SND_CONFIGS[variant], update_proportion=0.5, obs_norm="mean_std", learning_rate=1e-3,
                              target_learning_rate=1e-3)  # fmt: skip
    stacked, lone = stacked_and_lone(cfg, first_draw_seed=100)
    # VICReg and ST-DIM are blind to some directions (e.g. the target's last bias): the gradient there is rounding
    # noise, which Adam with eps 1e-8 turns into full lr steps of either sign, lone or stacked alike. A larger eps
    # keeps those steps at the noise's size and every real step as it was.
    for m in [stacked, *lone]:
        for opt in (m.optimizer, m.target_optimizer):
            opt.param_groups[0]["eps"] = 1e-4
    g = torch.Generator().manual_seed(1)
    per_seed = [torch.randint(0, 64 * (j + 1), (T + 1, N, *OBS), dtype=torch.uint8, generator=g) for j in range(K)]
    for t in range(T):
        for m, frames in zip(lone, per_seed, strict=True):
            m.update_stats(frames[t])
        stacked.update_stats(torch.cat([frames[t] for frames in per_seed]))
    rollout = seed_major([frames[:T] for frames in per_seed])
    successors = seed_major([frames[1:] for frames in per_seed])
    rows = [torch.tensor([0, 3, N + 1, 2 * N + 2, T * N - 1]), torch.tensor([1, 2, N, 3 * N + 3, T * N - 2])]
    lone_rng: dict[int, torch.Tensor] = {}  # each lone run's global generator, between its updates
    # The losses: the target's, the predictor's and the heads' sums reordered, twice for the square, and at most T N
    # rows x 512 features summed; relative, and of the size of the target losses' terms (InfoNCE's log n, VICReg's
    # hinges: about 1) where they cancel. The networks after two updates: Adam's bound on gradients of at most T N rows
    # through the first convolution's 15 x 15 outputs, for the exp_avg_sq moments (v ~ g^2) twice their relative error.
    nets = (lone[0].target, lone[0].predictor, lone[0].heads)
    loss_depth = 2 * reordered_depth(*nets) + T * N * 512
    grad_depth = gradient_depth(*nets, rows_positions=T * N * 15 * 15)
    for update in range(2):
        idx = seed_rows([rows[update]] * K, N)
        batch = MotivationBatch(rollout[idx], idx, rollout, lambda r: successors[r])
        stats = stacked.update(batch)
        for j, m in enumerate(lone):
            torch.manual_seed(100 + j) if update == 0 else torch.set_rng_state(lone_rng[j])
            own = per_seed[j].reshape(-1, *OBS)
            lone_stats = m.update(MotivationBatch(own[rows[update]], rows[update], own[: T * N],
                                                  lambda r, own=own: own[r + N]))  # fmt: skip
            lone_rng[j] = torch.get_rng_state()
            for key in ("loss/motivation", "loss/motivation_target"):
                torch.testing.assert_close(stats[key][j], lone_stats[key], rtol=rounding(torch.float32, loss_depth),
                                           atol=rounding(torch.float32, loss_depth, scale=1.0))  # fmt: skip
        if update == 0:
            continue
        states = stacked.state_dicts()
        for j in range(K):
            want = lone[j].state_dict()
            assert set(states[j]) == set(want)
            for part in ("target", "predictor", "heads"):
                assert states[j][part].keys() == want[part].keys()
                for name, value in want[part].items():
                    torch.testing.assert_close(states[j][part][name], value, rtol=rounding(torch.float32, depth=2),
                                               atol=adam_atol(2, grad_depth, cfg.learning_rate))  # fmt: skip
            moments = states[j]["target_optimizer"]["state"]
            # of the largest moment of the network: a direction the loss is blind to has a gradient that is rounding
            # noise of the other gradients' size, so its own moments are no scale
            v_size = max(float(entry["exp_avg_sq"].max()) for entry in want["target_optimizer"]["state"].values())
            v_atol = rounding(torch.float32, 2 * grad_depth + 8, scale=v_size)
            for i, entry in want["target_optimizer"]["state"].items():
                torch.testing.assert_close(moments[i]["exp_avg_sq"], entry["exp_avg_sq"], rtol=0, atol=v_atol)
            lone[j].load_state_dict(states[j])  # a seed's state is a lone run's: it loads into one
