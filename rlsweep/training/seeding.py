"""Seeds, RNG state capture/restore and device choice."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool, device: torch.device) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # On the CPU this makes one seed give the same numbers every time; on CUDA it would need
    # CUBLAS_WORKSPACE_CONFIG and costs speed, so GPU runs stay fast and nearly repeatable. Set either way: the
    # flag is process-wide, and a run must not inherit an earlier run's in the same process.
    torch.use_deterministic_algorithms(deterministic and device.type == "cpu")


def rng_state() -> dict[str, Any]:
    """Every RNG's state in types ``torch.load(weights_only=True)`` accepts (tensors, ints, floats, strings)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [str(kind), torch.from_numpy(np.asarray(key, dtype=np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_initialized():  # a CPU run on a GPU machine has no CUDA RNG in use, and need not start CUDA
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(key, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # The GPUs this process sees, in order; a run saved where it saw more (no CUDA_VISIBLE_DEVICES) resumes
        # under a launcher that shows it one.
        for index, cuda in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda.cpu(), index)
