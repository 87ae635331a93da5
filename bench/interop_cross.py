"""What does each toolchain do with a file written for another? Every target's file, run by every consumer.

    python bench/interop_cross.py [--images 500] [--steps 80] [--network every-op] [--out DIR]

Trains ``tests/consumer_matrix.py``'s ``--network`` (float32) once per neuron model (spikenas's
``lif``, sinabs's ``sinabs_lif`` and ``sinabs_iaf``) for ``--steps`` steps of 64 Fashion-MNIST
images, exports it with ``spikenas export --target`` for every target (``nir``, ``snntorch`` and
``norse`` from the ``lif`` network, ``sinabs`` from ``sinabs_lif``, ``speck`` from
``sinabs_iaf``) and runs each file by each consumer's own importer in its nox environment
(``noxfile.py``: snnTorch, norse on nir 1.0.8 and on sinabs's nir 1.0.4, sinabs), on the first
``--images`` test images. Prints one line per file and consumer::

    file=<target> consumer=<nox session> outcome=right|wrong|refused same_class=.. acc=.. spikenas_acc=.. error=..

``right``: every image gets the class spikenas gives it, within the 0.995 the consumer matrix
asks; ``wrong``: the file runs, no error, and the classes differ (or the output is not
``[T, images, classes]``: its shape is printed); ``refused``: the importer or the run raises (the
last line of its error is printed). A file should be ``right`` where it was written for and
``refused`` (never ``wrong``) everywhere else.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# each target's file and the neuron model its network trains with
FILES = {"nir": "lif", "snntorch": "lif", "norse": "lif", "sinabs": "sinabs_lif", "speck": "sinabs_iaf"}
CONSUMERS = ("snntorch", "norse", "norse_nir104", "sinabs")
RIGHT = 0.995


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500, help="test images")
    parser.add_argument("--steps", type=int, default=80, help="training steps of 64 images per neuron model")
    parser.add_argument("--network", default="every-op", help="a network of tests/consumer_matrix.py's NETWORKS")
    parser.add_argument("--out", default=str(ROOT / "lightning_logs" / "bench_interop_cross"), help="working directory")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

    from consumer_matrix import NETWORKS, export, fmnist_test_images, install, spikenas_logits, train

    if args.network not in NETWORKS:
        parser.error(f"unknown network {args.network!r}; known: {', '.join(NETWORKS)}")
    out = Path(args.out)
    images, labels = fmnist_test_images(args.images)
    trained = {neuron: train(out / neuron, NETWORKS[args.network], args.steps, 32, neuron)
               for neuron in dict.fromkeys(FILES.values())}
    expected = {neuron: spikenas_logits(t, images) for neuron, t in trained.items()}
    files = {target: export(trained[neuron], target) for target, neuron in FILES.items()}
    for consumer in CONSUMERS:
        reason = install(consumer)
        for target, path in files.items():
            mine = expected[FILES[target]]
            if reason:
                print(f"file={target} consumer={consumer} outcome=skipped error={reason!r}", flush=True)
                continue
            print(f"file={target} consumer={consumer} {outcome(consumer, path, images, labels, mine, out)}",
                  flush=True)


def outcome(consumer: str, path: Path, images, labels, mine, workdir: Path) -> str:
    """``outcome=..`` and its figures for ``consumer`` running ``path`` (``mine``: spikenas's logits)."""
    from consumer_matrix import agreement, toolchain_logits

    try:
        got = toolchain_logits(consumer, [path], images, [mine.shape[0]], workdir)[0]
    except RuntimeError as error:
        return f"outcome=refused error={last_error(str(error))!r}"
    if got.shape != tuple(mine.shape):
        return f"outcome=wrong shape={list(got.shape)} expected={list(mine.shape)}"
    result = agreement(got, mine, labels)
    verdict = "right" if result["agree"] >= RIGHT else "wrong"
    return (f"outcome={verdict} same_class={result['agree']:.4f} acc={result['acc']:.4f} "
            f"spikenas_acc={result['spikenas_acc']:.4f}")


def last_error(log: str) -> str:
    """The last line of a Python traceback in ``log`` (``SomeError: message``), else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.startswith("nox >")]
    errors = [line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))]
    return (errors or lines or [""])[-1][:300]


if __name__ == "__main__":
    main()
