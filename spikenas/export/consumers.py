"""The lines a user of each toolchain types to run a spikenas NIR file, and nothing else.

This file imports no spikenas code (only numpy, torch, nir and the toolchain), so it also runs
as a script in an environment that holds just the toolchain (the consumer test matrix,
``noxfile.py``, and ``bench/interop.py`` do that)::

    python consumers.py {snntorch,norse,sinabs} net.nir images.npz logits.npz [net2.nir images2.npz logits2.npz ...]

(one or more triples, run by one process: the matrix pays the torch and toolchain imports once
per toolchain). Each ``images.npz`` holds ``images [N, c, H, W]`` (float32) and ``timesteps``;
its ``logits.npz`` receives ``logits [T, N, classes]`` (each step's output; the class is the
argmax of their mean) and the versions that produced them. Each runner feeds the image at
every step (direct encoding) from a fresh state per batch, as ``docs/deploy.md`` shows.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import sys
from typing import Callable

import nir
import numpy as np
import torch


def _steps(model: Callable, images: torch.Tensor, timesteps: int) -> torch.Tensor:
    """``[T, B, classes]``: the image fed at every step, the model's state passed back each time."""
    state, out = None, []
    for _ in range(timesteps):
        logits, state = model(images, state)
        out.append(logits)
    return torch.stack(out)


def load_snntorch(path: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """snnTorch 1.0: ``import_from_nir``; membranes live in the modules (``utils.reset`` before
    each batch), the graph's own state is passed back each step. The importer prints how it
    scales LIF inputs. Built once per file: snnTorch keeps every neuron it builds (and its
    membranes) in ``SpikingNeuron.instances``, so a network built per batch is never freed."""
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(nir.read(path))

    def run_batch(images: torch.Tensor, timesteps: int) -> torch.Tensor:
        utils.reset(net)
        return _steps(net, images, timesteps)

    return run_batch


def load_norse(path: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """norse 1.1: ``from_nir`` (its default ``dt`` of 1e-3 s); each batch starts from no state,
    which is passed back each step."""
    import norse.torch

    net = norse.torch.from_nir(nir.read(path))
    return lambda images, timesteps: _steps(net, images, timesteps)


def load_sinabs(path: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """sinabs 3.1: ``from_nir`` one step per call, its own neurons as it builds them (several
    spikes per step, reset by subtraction: the ``sinabs_lif`` and ``sinabs_iaf`` models the
    network trained with); membranes live in the modules (``reset_states`` before each batch)."""
    import sinabs

    model = sinabs.from_nir(nir.read(path), num_timesteps=1)

    def run_batch(images: torch.Tensor, timesteps: int) -> torch.Tensor:
        sinabs.reset_states(model)
        return _steps(model, images, timesteps)

    return run_batch


LOADERS: dict[str, Callable[[str], Callable[[torch.Tensor, int], torch.Tensor]]] = {
    "snntorch": load_snntorch, "norse": load_norse, "sinabs": load_sinabs,
}


def run(target: str, path: str, images: torch.Tensor, timesteps: int, batch_size: int = 500) -> torch.Tensor:
    """``[T, N, classes]`` logits of ``images [N, c, H, W]`` run by ``target``'s toolchain, the
    file imported once, in batches of ``batch_size`` images, each from a fresh state."""
    run_batch = LOADERS[target](path)
    with torch.no_grad():
        return torch.cat([run_batch(chunk, timesteps) for chunk in images.split(batch_size)], dim=1)


def versions(target: str) -> dict[str, str]:
    """The installed versions of the toolchain, nir, nirtorch and torch."""
    out = {}
    for package in (target, "nir", "nirtorch", "torch"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "absent"
    return out


def main(argv: list[str]) -> None:
    if len(argv) < 4 or (len(argv) - 1) % 3:
        sys.exit(f"usage: consumers.py TARGET (NIR_FILE IMAGES_NPZ OUT_NPZ)...; got {argv}")
    target, files = argv[0], argv[1:]
    torch.set_num_threads(1)
    for path, images_file, out_file in zip(files[::3], files[1::3], files[2::3]):
        data = np.load(images_file)
        logits = run(target, path, torch.from_numpy(data["images"]), int(data["timesteps"]))
        np.savez(out_file, logits=logits.numpy(), **{f"version_{k}": v for k, v in versions(target).items()})


if __name__ == "__main__":
    main(sys.argv[1:])
