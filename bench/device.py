"""What the benchmarks share about devices: a name for result lines and a synchronising wait."""

from __future__ import annotations

import torch


def device_name(device: torch.device) -> str:
    """``NVIDIA_H200``-style GPU names; ``cpu_<n>threads`` on the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device).replace(" ", "_")
    return f"cpu_{torch.get_num_threads()}threads"


def sync(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
