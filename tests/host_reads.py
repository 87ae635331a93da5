"""A dispatch-mode spy for the tensor operations that read device values back to the host.

On a GPU each of them waits for every queued kernel (a synchronisation); on the CPU they run
the same operators, so the spy finds them without a GPU.
"""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode

HOST_READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "bincount", "aminmax"}


class HostReads(TorchDispatchMode):
    """``with HostReads() as spy: ...`` then ``spy.seen``: the host-reading operators called, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_READS:
            self.seen.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))
