"""How the networks compute, apart from what they compute: several seeds of one configuration stacked into one
set of networks in one process (:mod:`~rlsweep.compute.stacked`, ``seeds_per_process``) and the speed switches
(:mod:`~rlsweep.compute.perf`: precision, compile, channels-last frames, optimiser kernels, host-to-device
uploads). The agent, the motivations and the training loop use both; neither imports them."""
