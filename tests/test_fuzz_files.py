"""Fuzzing the files and addresses spikenas reads: well-formed Lightning checkpoints whose
callback state is hostile (paths with ``..``, absolute, through symlinks, out of the run), NIR
files with parts mutated, and checkpoint URLs answered slowly, hugely or wrongly by a local server.

Each example either succeeds or ends in one ``spikenas: error:`` line (for the library's
``load_nir``: a :class:`~spikenas.base.errors.SpikenasError`), and changes nothing outside the run's
own directory. Budgets, seed and long run: see :mod:`fuzzing`.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import BUDGETS, fuzz, outcome, sandbox
from spikenas.base.errors import SpikenasError
from spikenas.export.nir_load import load_nir, run_nir
from test_fuzz import FIT_CONFIG, FIT_FIXED


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, Path, Path]:
    """FIT_CONFIG's file, its checkpoint after one epoch, and that network exported to NIR."""
    directory = tmp_path_factory.mktemp("trained")
    config = directory / "fit.yaml"
    config.write_text(yaml.safe_dump(FIT_CONFIG))
    assert outcome(["fit", "--config", str(config), "--trainer.default_root_dir", str(directory), *FIT_FIXED]) is None
    last = next(directory.rglob("last.ckpt"))
    nir_file = directory / "net.nir"
    assert outcome(["export", "--config", str(config), "--ckpt_path", str(last), "--output", str(nir_file), "--target", "nir"]) is None
    return str(config), last, nir_file


# --- hostile callback state ----------------------------------------------------------------------


def hostile_paths(box, dirpath: str) -> st.SearchStrategy[str]:
    root = box.root
    return st.sampled_from([
        str(box.outside / "victim.ckpt"), str(box.base / "last.ckpt"), str(root / box.OTHER_RUN / "checkpoints" / "last.ckpt"),
        f"{dirpath}/../../{box.OTHER_RUN}/checkpoints/best.ckpt", f"{dirpath}/../../../../victim.txt",
        f"{dirpath}/../../../../outside/victim.ckpt", f"{dirpath}/../../victim.txt", str(root / "version_5" / "victim.ckpt"),
        str(box.base / "link.ckpt"), "victim.txt", "../outside/victim.ckpt", f"{dirpath}/last.ckpt", str(root / ".hidden" / "victim.txt"),
        str(root / ".hidden"), str(box.outside), "", f"{dirpath}/../../.claims/{box.OTHER_RUN}",
    ])


score_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("inf"), -float("inf"), float("nan")]))


@BUDGETS
def test_a_checkpoint_with_hostile_callback_state_touches_nothing_outside_the_run(budget, trained):
    """``fit --ckpt_path`` resumes a real checkpoint whose ModelCheckpoint state names files
    outside the new run (its best/last/k-th paths, which Lightning removes when it replaces
    them, and its dirpath): the fit completes or refuses in one line, and every file outside
    its own run directory is untouched."""
    config, last, _ = trained
    original = torch.load(last, weights_only=True)
    key = next(k for k in original["callbacks"] if "ModelCheckpoint" in k)

    @fuzz(budget, ci=3)
    @given(st.data())
    def check(data):
        with sandbox() as box:
            (box.base / "link.ckpt").symlink_to(box.outside / "victim.ckpt")
            predicted = str(box.root / "version_8" / "checkpoints")  # the run this fit will claim
            dirpath = data.draw(st.sampled_from([predicted, original["callbacks"][key]["dirpath"], str(box.outside),
                                                 f"{predicted}/../../{box.OTHER_RUN}/checkpoints", "checkpoints"]), "dirpath")
            paths = hostile_paths(box, dirpath)
            score = lambda label: torch.tensor(data.draw(score_values, label))  # noqa: E731
            state = {"monitor": "val/acc", "best_model_score": score("best score"), "best_model_path": data.draw(paths, "best"),
                     "current_score": score("current score"), "dirpath": dirpath,
                     "best_k_models": {data.draw(paths, "k path"): score("k score")
                                       for _ in range(data.draw(st.integers(0, 3), "k"))},
                     "kth_best_model_path": data.draw(paths, "kth"), "kth_value": score("kth score"),
                     "last_model_path": data.draw(paths, "last")}
            evil = {**original, "callbacks": {key: state}}
            ckpt = box.base / "evil.ckpt"
            torch.save(evil, ckpt)
            box.retake()
            outcome(["fit", "--config", config, "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(box.logs),
                     *FIT_FIXED[:6], "--trainer.max_epochs", "2"])
            box.confined()

    check()


# --- NIR files ----------------------------------------------------------------------------------


def datasets_of(path: Path) -> list[str]:
    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visit(names.append)
    return names


replacements = st.one_of(
    st.text(max_size=8), st.integers(-(2**31), 2**31 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["LIF", "Conv2d", "Delay", "Input", "Output", "Affine", "Flatten", "SumPool2d", "IF", "CubaLIF", "Graph"]),
    st.lists(st.integers(0, 5), min_size=1, max_size=4).map(lambda shape: np.full(shape, 0.5, np.float32)),
    st.sampled_from([np.array([]), np.array([np.nan, np.inf], np.float32), np.zeros((2, 3, 5, 5), np.float32),
                     np.array([-1, 0], np.int64), np.array([b"a", b"b"])]),
)


@BUDGETS
def test_a_mutated_nir_file_loads_and_runs_or_is_one_error(budget, trained, tmp_path):
    """``load_nir`` of an exported file with a byte flipped, a part cut off, a dataset deleted
    or replaced (by another type, shape or node type): it runs, or raises a one-line
    SpikenasError naming the problem; never another exception."""
    _, _, nir_file = trained
    names = datasets_of(nir_file)
    size = nir_file.stat().st_size

    @fuzz(budget, ci=8)
    @given(st.one_of(
        st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=8)),
        st.tuples(st.just("truncate"), st.integers(0, size - 1)),
        st.tuples(st.just("delete"), st.lists(st.sampled_from(names), min_size=1, max_size=3)),
        st.tuples(st.just("replace"), st.lists(st.tuples(st.sampled_from(names), replacements), min_size=1, max_size=3)),
    ))
    def check(mutation):
        path = tmp_path / "mutated.nir"
        shutil.copyfile(nir_file, path)
        kind, what = mutation
        if kind in ("flip", "truncate"):
            data = bytearray(path.read_bytes())
            if kind == "truncate":
                del data[what:]
            for offset, value in what if kind == "flip" else []:
                data[offset] = value
            path.write_bytes(bytes(data))
        else:
            with h5py.File(path, "r+") as f:
                for item in what:
                    name, value = item if kind == "replace" else (item, None)
                    if name in f:
                        del f[name]
                    if value is not None and "/".join(name.split("/")[:-1]) in f or "/" not in name and value is not None:
                        try:
                            f[name] = value
                        except (OSError, ValueError, TypeError):  # h5py cannot store it (a parent deleted above): not a file to load
                            continue
        try:
            module = load_nir(path)
            run_nir(module, torch.rand(2, 1, 8, 8), 2)
        except SpikenasError as exc:
            assert "\n" not in str(exc) and str(exc), repr(exc)
        except Exception as exc:  # noqa: BLE001 (the finding: anything but a one-line SpikenasError)
            pytest.fail(f"load_nir raised {type(exc).__name__}: {str(exc)[:300]} (mutation {kind} {str(what)[:200]})")

    check()


# --- URLs ---------------------------------------------------------------------------------------

ANSWERS = st.one_of(
    st.tuples(st.just("ok"), st.none()),
    st.tuples(st.just("status"), st.sampled_from([204, 301, 400, 403, 404, 418, 500, 503])),
    st.tuples(st.just("truncated"), st.integers(0, 4000)),
    st.tuples(st.just("length-lie"), st.integers(1, 10**12)),
    st.tuples(st.just("slow"), st.floats(0.05, 0.4)),
    st.tuples(st.just("huge"), st.integers(1, 4)),
    st.tuples(st.just("redirect"), st.sampled_from(["file:///etc/passwd", "ftp://127.0.0.1:1/x.ckpt", "/x.ckpt", "http://[::1",
                                                    "gopher://127.0.0.1/", "//127.0.0.1:1/x.ckpt", ""])),
    st.tuples(st.just("junk"), st.binary(max_size=500)),
    st.tuples(st.just("html"), st.text(max_size=100)),
    st.tuples(st.just("close"), st.none()),
)
HUGE_LIMIT = 1 << 18  # the download limit while fuzzing (spikenas's is 4 GiB): "huge" answers send 1-4 times it


@contextlib.contextmanager
def serve(answer: tuple, checkpoint: bytes, lifetime: float = 20.0) -> Iterator[str]:
    """A server on 127.0.0.1 (a thread) giving ``answer`` to every request, for ``lifetime``
    seconds at most (it shuts itself down), each connection timing out after 2 s; yields the URL."""
    kind, value = answer

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 2.0

        def log_message(self, *args):
            pass

        def body(self, data: bytes, length: int | None = None, content_type: str = "application/octet-stream"):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data) if length is None else length))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            try:
                if kind == "ok":
                    self.body(checkpoint)
                elif kind == "status":
                    self.send_response(value)
                    self.send_header("Location", "/x.ckpt")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "truncated":
                    self.body(checkpoint[:value])
                elif kind == "length-lie":
                    self.body(checkpoint[:2000], length=value)
                elif kind == "slow":  # the whole body, a chunk every `value` seconds (past the patched timeout)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(checkpoint)))
                    self.end_headers()
                    for start in range(0, min(len(checkpoint), 4 * 4096), 4096):
                        self.wfile.write(checkpoint[start:start + 4096])
                        self.wfile.flush()
                        time.sleep(value)
                elif kind == "huge":
                    self.send_response(200)
                    self.end_headers()
                    chunk = b"\0" * 65536
                    for _ in range(value * HUGE_LIMIT // len(chunk) + 1):
                        self.wfile.write(chunk)
                elif kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "junk":
                    self.body(value)
                elif kind == "html":
                    self.body(f"<html>{value}</html>".encode(), content_type="text/html")
                elif kind == "close":
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(lifetime, server.shutdown)
    thread.start()
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x.ckpt"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@BUDGETS
def test_a_checkpoint_url_answered_slowly_hugely_or_wrongly_is_one_line(budget, trained, monkeypatch):
    config, last, _ = trained
    checkpoint = last.read_bytes()
    monkeypatch.setattr("spikenas.train.checkpoint.MAX_DOWNLOAD_BYTES", HUGE_LIMIT)
    monkeypatch.setattr("spikenas.train.checkpoint.DOWNLOAD_TIMEOUT_S", 0.3)

    @fuzz(budget, ci=6)
    @given(ANSWERS, st.sampled_from(["test", "export", "validate"]))
    def check(answer, command):
        with sandbox() as box, serve(answer, checkpoint) as url:
            extra = (["--output", str(box.root / "version_0" / "net.nir"), "--target", "nir"] if command == "export" else
                     ["--trainer.default_root_dir", str(box.logs), *FIT_FIXED[6:]])
            message = outcome([command, "--config", config, "--ckpt_path", url, *extra])
            if answer[0] != "ok":
                assert message is not None and url in message, (answer, message)
            box.confined()

    check()
