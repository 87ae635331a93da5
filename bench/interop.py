"""Do snnTorch, norse and sinabs run spikenas's NIR exports as spikenas does? On the whole test set.

    python bench/interop.py [--images 10000] [--steps 844] [--out DIR] [--toolchains T1,T2] [--networks N1,N2]

Trains each of ``tests/consumer_matrix.py``'s ``NETWORKS`` chosen by ``--networks`` (default
all: ``every-op``, two cells with every operation of the search space, a reduction and a head
with a hidden LIF layer and two votes per class, width 8, T = 5; ``one-cell`` and
``three-cells``; ``learnt-tau``, ``every-op`` with a time constant learnt per layer; ``main``,
what ``bash scripts/main.sh`` finds (one cell, width 64; found at 4 bits, which ``pytest -m
consumers`` runs; here at 8 and 32 like the others); ``recurrent``, backward edges: two
cycles, a delay on no cycle) on Fashion-MNIST with ``spikenas fit`` for ``--steps`` steps of 64
images (844: one epoch), once with 8-bit quantisation-aware training and once in float32, with
the neurons each toolchain runs (spikenas's ``lif`` for snnTorch and norse, ``sinabs_lif`` for
sinabs, ``sinabs_iaf`` for Speck through sinabs). Each network is exported with ``spikenas
export --target <toolchain>`` and run by the toolchain's own importer in its own nox environment
(``noxfile.py``; nothing of spikenas is installed there; sinabs by plain ``sinabs.from_nir`` and
``reset_states``; every file of one environment in one call) on the first ``--images`` test
images. Prints, per network and precision (8-bit first, float32 last)::

    images=<n> snntorch_agree=<share of images with spikenas's class> norse_agree=.. sinabs_agree=..
    snntorch_acc=<test accuracy> norse_acc=.. sinabs_acc=.. snntorch_spikenas_acc=<spikenas's,
    lif network> sinabs_spikenas_acc=<sinabs_lif network> speck_spikenas_acc=<sinabs_iaf network>
    weight_bits=<8|32> norse_nir104_agree=<norse on nir 1.0.4 / nirtorch 2.0.2> speck_agree=..
    network=<name>

(one line each). A toolchain pip cannot install, left out by ``--toolchains``, or that does not
run the network (Speck: no backward edges, the chips run feed-forward networks, and no learnt
time constant, its IAF neurons have no leak) is reported as ``skipped``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10000, help="test images (default: all 10,000)")
    parser.add_argument("--steps", type=int, default=844, help="training steps of 64 images (844: one epoch)")
    parser.add_argument("--out", default=str(ROOT / "lightning_logs" / "bench_interop"), help="working directory")
    parser.add_argument("--toolchains", default="", help="comma-separated subset of the consumers (default: all)")
    parser.add_argument("--networks", default="", help="comma-separated subset of the networks (default: all)")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    from consumer_matrix import NETWORKS, TOOLCHAINS, Case, Matrix, agreement, fmnist_test_images, install

    start = time.perf_counter()
    toolchains, networks = chosen(parser, args.toolchains, TOOLCHAINS), chosen(parser, args.networks, NETWORKS)
    skipped = {t: "not chosen (--toolchains)" if t not in toolchains else install(t) for t in TOOLCHAINS}
    for toolchain, reason in skipped.items():
        if reason:
            print(f"{toolchain}: skipped: {reason}")
    images, labels = fmnist_test_images(args.images)
    runs = [(network, bits) for network in networks for bits in (8, 32)]
    cases = [Case(network, bits, t) for network, bits in runs for t in NETWORKS[network].toolchains if not skipped[t]]
    matrix = Matrix(Path(args.out), images, cases, args.steps)
    results = {}
    for case in cases:
        results[case] = agreement(matrix.got(case), matrix.expected(case)[1], labels)
        print(f"{case.toolchain} network={case.network} weight_bits={case.weight_bits}: {results[case]}", flush=True)
    print(f"seconds={time.perf_counter() - start:.0f}")
    for network, bits in runs:
        print(summary({case.toolchain: result for case, result in results.items()
                       if (case.network, case.weight_bits) == (network, bits)}, len(images), bits, network))


def summary(results: dict, images: int, bits: int, network: str) -> str:
    """The bench's line for one network and precision; ``results``: each toolchain's :func:`agreement`."""
    value = lambda t, k: f"{results[t][k]:.4f}" if t in results else "skipped"  # noqa: E731
    return (f"images={images} " + " ".join(f"{t}_agree={value(t, 'agree')}" for t in ("snntorch", "norse", "sinabs"))
            + " " + " ".join(f"{t}_acc={value(t, 'acc')}" for t in ("snntorch", "norse", "sinabs"))
            + " " + " ".join(f"{t}_spikenas_acc={value(t, 'spikenas_acc')}" for t in ("snntorch", "sinabs", "speck"))
            + f" weight_bits={bits} norse_nir104_agree={value('norse_nir104', 'agree')}"
            + f" speck_agree={value('speck', 'agree')}"
            + f" network={network}")


def chosen(parser: argparse.ArgumentParser, option: str, known) -> list[str]:
    """The comma-separated names of ``option`` (all of ``known`` when empty); an unknown one is a usage error."""
    names = [name for name in option.split(",") if name] or list(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown name {unknown[0]!r}; known: {', '.join(known)}")
    return names


if __name__ == "__main__":
    main()
