"""Do snnTorch, norse and sinabs run spikenas's NIR exports as spikenas does? On the whole test set.

    python bench/interop.py [--images 10000] [--steps 844] [--out DIR] [--toolchains T1,T2] [--recurrent]

Trains ``tests/consumer_matrix.py``'s network (two cells with a 3x3 average pool, skips and
nodes summing two and three branches, a reduction, a head with a hidden LIF layer and two votes
per class; width 8, T = 5), or with ``--recurrent`` its ``RECURRENT_GENOTYPE`` (backward edges:
two cycles, a delay on no cycle), on Fashion-MNIST with ``spikenas fit`` for ``--steps`` steps of
64 images (844: one epoch), once in float32 and once with 8-bit quantisation-aware training, with
the neurons each toolchain runs (spikenas's ``lif`` for snnTorch and norse, ``sinabs_lif`` for
sinabs, ``sinabs_iaf`` for Speck through sinabs). Each network is exported with ``spikenas
export --target <toolchain>`` and run by the toolchain's own importer in its own nox environment
(``noxfile.py``; nothing of spikenas is installed there; sinabs by plain ``sinabs.from_nir`` and
``reset_states``) on the first ``--images`` test images. Prints, per precision (8-bit first,
float32 last)::

    images=<n> snntorch_agree=<share of images with spikenas's class> norse_agree=.. sinabs_agree=..
    snntorch_acc=<test accuracy> norse_acc=.. sinabs_acc=.. snntorch_spikenas_acc=<spikenas's,
    lif network> sinabs_spikenas_acc=<sinabs_lif network> speck_spikenas_acc=<sinabs_iaf network>
    weight_bits=<8|32> norse_nir104_agree=<norse on nir 1.0.4 / nirtorch 2.0.2> speck_agree=..
    network=<main|recurrent>

(one line each). A toolchain pip cannot install, left out by ``--toolchains``, or, with
``--recurrent``, whose target exports no backward edges (Speck: the chips run feed-forward
networks), is reported as ``skipped``.
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
    parser.add_argument("--recurrent", action="store_true", help="the network with backward edges")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    from consumer_matrix import (GENOTYPE, RECURRENT_GENOTYPE, RECURRENT_TOOLCHAINS, TOOLCHAINS, Networks, agreement, export,
                                 fmnist_test_images, install, toolchain_logits)

    start = time.perf_counter()
    images, labels = fmnist_test_images(args.images)
    chosen = [t for t in args.toolchains.split(",") if t] or list(TOOLCHAINS)
    unknown = sorted(set(chosen) - set(TOOLCHAINS))
    if unknown:
        parser.error(f"unknown toolchain {unknown[0]!r}; known: {', '.join(TOOLCHAINS)}")

    def skip_reason(toolchain: str) -> str | None:
        if toolchain not in chosen:
            return "not chosen (--toolchains)"
        if args.recurrent and toolchain not in RECURRENT_TOOLCHAINS:
            return "its target exports no backward edges (--recurrent)"
        return install(toolchain)

    skipped = {toolchain: skip_reason(toolchain) for toolchain in TOOLCHAINS}
    for toolchain, reason in skipped.items():
        if reason:
            print(f"{toolchain}: skipped: {reason}")
    lines = []
    for bits in (8, None):
        network = "recurrent" if args.recurrent else "main"
        networks = Networks(Path(args.out) / f"{network}_bits{bits or 32}", args.steps, bits, images,
                            RECURRENT_GENOTYPE if args.recurrent else GENOTYPE)
        results = {}
        for toolchain in TOOLCHAINS:
            if skipped[toolchain]:
                continue
            trained, expected = networks.get(toolchain)
            got = toolchain_logits(toolchain, export(trained, toolchain), images, expected.shape[0], trained.final.parent)
            results[toolchain] = agreement(got, expected, labels)
            print(f"{toolchain} weight_bits={bits or 32}: {results[toolchain]}", flush=True)
        value = lambda t, k: f"{results[t][k]:.4f}" if t in results else "skipped"  # noqa: E731
        lines.append(
            f"images={len(images)} " + " ".join(f"{t}_agree={value(t, 'agree')}" for t in ("snntorch", "norse", "sinabs"))
            + " " + " ".join(f"{t}_acc={value(t, 'acc')}" for t in ("snntorch", "norse", "sinabs"))
            + " " + " ".join(f"{t}_spikenas_acc={value(t, 'spikenas_acc')}" for t in ("snntorch", "sinabs", "speck"))
            + f" weight_bits={bits or 32} norse_nir104_agree={value('norse_nir104', 'agree')} speck_agree={value('speck', 'agree')}"
            + f" network={network}"
        )
    print(f"seconds={time.perf_counter() - start:.0f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
