"""Do snnTorch, norse and sinabs run spikenas's NIR exports as spikenas does? On the whole test set.

    python bench/interop.py [--images 10000] [--steps 844] [--out DIR] [--recurrent]

Trains ``tests/consumer_matrix.py``'s network (two cells with a 3x3 average pool, skips and
nodes summing two and three branches, a reduction, a head with a hidden LIF layer and two votes
per class; width 8, T = 5), or with ``--recurrent`` its ``RECURRENT_GENOTYPE`` (backward edges:
two cycles, a delay on no cycle), on Fashion-MNIST with ``spikenas fit`` for ``--steps`` steps of 64
images (844: one epoch), once in float32 and once with 8-bit quantisation-aware training. Each
network is exported with ``spikenas export --target <toolchain>`` and run by the toolchain's own
importer in its own nox environment (``noxfile.py``; nothing of spikenas is installed there) on
the first ``--images`` test images. Prints, per network (8-bit first, float32 last)::

    images=<n> snntorch_agree=<share of images with spikenas's class> norse_agree=.. sinabs_agree=..
    snntorch_acc=<test accuracy> norse_acc=.. sinabs_acc=.. spikenas_acc=.. weight_bits=<8|32>
    norse_nir104_agree=<norse on nir 1.0.4 / nirtorch 2.0.2> network=<main|recurrent>

(one line each). A toolchain pip cannot install is reported as ``skipped``.
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
    parser.add_argument("--recurrent", action="store_true", help="the network with backward edges")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    from consumer_matrix import (GENOTYPE, RECURRENT_GENOTYPE, TOOLCHAINS, agreement, export, fmnist_test_images, install,
                                 spikenas_logits, toolchain_logits, train)

    start = time.perf_counter()
    images, labels = fmnist_test_images(args.images)
    skipped = {toolchain: install(toolchain) for toolchain in TOOLCHAINS}
    for toolchain, reason in skipped.items():
        if reason:
            print(f"{toolchain}: skipped: {reason}")
    lines = []
    for bits in (8, None):
        network = "recurrent" if args.recurrent else "main"
        directory = Path(args.out) / f"{network}_bits{bits or 32}"
        trained = train(directory, args.steps, weight_bits=bits, genotype=RECURRENT_GENOTYPE if args.recurrent else GENOTYPE)
        expected = spikenas_logits(trained, images)
        results = {}
        for toolchain in TOOLCHAINS:
            if skipped[toolchain]:
                continue
            nir_file = export(trained, toolchain.split("_")[0], directory)
            got = toolchain_logits(toolchain, nir_file, images, expected.shape[0], directory)
            results[toolchain] = agreement(got, expected, labels)
            print(f"{toolchain} weight_bits={bits or 32}: {results[toolchain]}", flush=True)
        value = lambda t, k: f"{results[t][k]:.4f}" if t in results else "skipped"  # noqa: E731
        spikenas_acc = next(iter(results.values()))["spikenas_acc"] if results else float("nan")
        lines.append(
            f"images={len(images)} " + " ".join(f"{t}_agree={value(t, 'agree')}" for t in ("snntorch", "norse", "sinabs"))
            + " " + " ".join(f"{t}_acc={value(t, 'acc')}" for t in ("snntorch", "norse", "sinabs"))
            + f" spikenas_acc={spikenas_acc:.4f} weight_bits={bits or 32} norse_nir104_agree={value('norse_nir104', 'agree')}"
            + f" network={network}"
        )
    print(f"seconds={time.perf_counter() - start:.0f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
