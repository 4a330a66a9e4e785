"""PPO with two critic heads: GAE per stream and the clipped-surrogate update (method.md §4.1, §4.2).

Implementation details and their sources:
1. Two value heads (V_ext, V_int) with their own discounts gamma_ext / gamma_int; GAE is computed once per
   stream by the same function, with the stream's episodic choice explicit (seed and SND paper: both
   episodic; OpenAI/CleanRL: the intrinsic stream is not cut by episode ends -> ``ppo.int_episodic``).
2. The rollout's last step bootstraps from V(s_T) (CleanRL). The seed's and the paper's code start the
   backward pass at T-2 and leave the last step with zero advantage and return; ``ppo.bootstrap_last=false``
   reproduces that quirk.
3. Advantage = ext_adv_coef * A_ext + int_adv_coef * A_int (2 : 1), not normalised (seed, paper); CleanRL
   normalises per minibatch -> ``ppo.normalize_advantages``.
4. Critic loss = MSE_ext + MSE_int without value clipping (seed, paper), weighted by vf_coef = 0.5.
5. Minibatches of 512 drawn with replacement, 32 per epoch (seed); the paper permutes the rollout once per
   epoch -> ``ppo.minibatch_sampling``.
6. Gradient-norm clip 0.5 on the PPO model only; motivation models have their own optimisers, unclipped.
"""

from rlsweep.agent.gae import compute_gae
from rlsweep.agent.ppo import (
    Batch,
    PPOLossTerms,
    PPOUpdater,
    explained_variance,
    minibatch_indices,
    ppo_loss,
    rollout_batch,
)

__all__ = [
    "Batch",
    "PPOLossTerms",
    "PPOUpdater",
    "compute_gae",
    "explained_variance",
    "minibatch_indices",
    "ppo_loss",
    "rollout_batch",
]
