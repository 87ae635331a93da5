"""The same budget at 32-bit and 8-bit weights on Fashion-MNIST: search, train, test both.

    python bench/quantize_fmnist.py [--quick] [--epochs N] [--out DIR] [spikenas fit overrides...]

For each precision, ``spikenas search --config configs/search.yaml`` at the budget with the
``memory`` cost model counting weights at that precision (8 bits: four times the weights in
the same bytes, so the search may take a wider macro), then ``spikenas fit`` of its
``final.yaml`` (the 8-bit one trains with quantisation-aware training, as ``final.yaml`` says)
and ``spikenas test`` of the best checkpoint, at the deployed precision. Last line::

    test_acc_fp32=<a> test_acc_int8=<a> bytes_fp32=<n> bytes_int8=<n> budget=<n>

``--quick`` (2 CPU cores, about 10-15 minutes): budget 64 KiB, widths 8 to 64 to choose from,
14x14 cells, T = 5, single-FC head, Adam 3e-3 per-step cosine, batch 32, one epoch each.
Full (the default): budget 256 KiB, the same widths, the recipe of ``configs/search.yaml``
(20 epochs) and a compiled network.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_fmnist import FULL_FIT, QUICK_FIT, RESULTS, ROOT, fit_and_test, search  # noqa: E402

WIDTHS = ["--space.channels", "[64, 48, 32, 24, 16, 8]"]
QUICK_SEARCH = [
    "--model.macro.stem_stride", "2", "--model.macro.timesteps", "5",
    "--model.macro.head_pool", "1", "--space.head_pool", "[1, 2]",
    "--model.macro.head_hidden", "0", "--space.head_hidden", "[0]",
    "--model.macro.votes", "1", "--model.macro.dropout", "0.0",
]


def footprint(final: Path) -> int:
    """The found network's bytes under the search's cost model (``memory.txt`` beside ``final``)."""
    match = re.search(r"budgeted footprint: ([\d,]+) bytes", (final.parent / "memory.txt").read_text())
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", default=None, help="default: 64KiB with --quick, else 256KiB")
    parser.add_argument("--epochs", type=int, default=None, help="default: 1 with --quick, else the config's (20)")
    parser.add_argument("--out", type=Path, default=ROOT / "lightning_logs" / "bench_quantize_fmnist")
    args, rest = parser.parse_known_args()
    del sys.argv[1:]  # the CLI gets its arguments from us, not from the command line
    budget = args.budget or ("64KiB" if args.quick else "256KiB")
    epochs = args.epochs or (1 if args.quick else None)
    results = {}
    for bits in (32, 8):
        RESULTS.clear()
        cost = ["--cost_options", f"{{weight_bits: {bits}}}"]
        final = search(budget, args.out / f"search{bits}", ROOT / "configs" / "search.yaml",
                       WIDTHS + (QUICK_SEARCH if args.quick else []) + cost)
        fit_and_test(final, args.out / f"fit{bits}", epochs, (QUICK_FIT if args.quick else FULL_FIT) + rest)
        results[bits] = (RESULTS["test_acc"], footprint(final), int(RESULTS["epochs"]))
        print(f"bits={bits} test_acc={results[bits][0]:.4f} bytes={results[bits][1]} epochs={results[bits][2]} "
              f"final={final}", flush=True)
    from spikenas.base.units import parse_bytes

    print(f"test_acc_fp32={results[32][0]:.4f} test_acc_int8={results[8][0]:.4f} bytes_fp32={results[32][1]} "
          f"bytes_int8={results[8][1]} budget={parse_bytes(budget)}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    main()
