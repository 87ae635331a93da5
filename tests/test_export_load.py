"""spikenas's own reader of exported files (``load_nir``): each target's file run by that
target's conventions (its ``dt``, its neurons) or refused in one line; the target its metadata
names, even when edited; files without one run only where spikenas wrote them."""

from __future__ import annotations

import h5py
import pytest
import torch

from spikenas import Genotype
from spikenas.base.errors import SpikenasError
from spikenas.export import ExportError, TARGETS, load_nir, network_to_nir, run_nir
from spikenas.export.graph import write

from test_export import FORWARD, INTO_INPUT, images, trained_like
from test_export_targets import RECURRENT, neuron_for

RUN_BY_SPIKENAS = "spikenas's reader runs files written for nir, snntorch, norse"


def _write(target: str, path, cells=(FORWARD, FORWARD), edits: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``path`` written for ``target``, its metadata then edited (a value None deletes the
    key), and :func:`images` with the network's logits on them."""
    net = trained_like(Genotype(cells), neuron_for(target))
    write(path, network_to_nir(net, target=target))
    with h5py.File(path, "r+") as handle:
        for key, value in (edits or {}).items():
            del handle["node/metadata"][key]
            if value is not None:
                handle["node/metadata"][key] = value
    x = images()
    with torch.no_grad():
        return x, net.timestep_logits(x)


@pytest.mark.parametrize("cells", [(FORWARD, FORWARD), *RECURRENT.values()], ids=["forward", *RECURRENT])
@pytest.mark.parametrize("target", list(TARGETS))
def test_load_nir_runs_each_targets_file_by_its_conventions_or_refuses_in_one_line(target, cells, tmp_path):
    path = tmp_path / "net.nir"
    if cells != (FORWARD, FORWARD) and not TARGETS[target].recurrent:  # speck: the chips run feed-forward networks
        with pytest.raises(ExportError, match=f"a backward edge .* has no form that target {target} runs") as error:
            _write(target, path, cells)
        assert "\n" not in str(error.value) and not path.exists()
        return
    x, expected = _write(target, path, cells)
    if target in ("sinabs", "speck"):  # sinabs's own neurons, which the file does not describe
        with pytest.raises(SpikenasError, match=rf"'{path}' was written for target {target} .*{RUN_BY_SPIKENAS}") as error:
            load_nir(path)
        assert "\n" not in str(error.value)
        return
    module = load_nir(path)
    assert module.dt == {"nir": 1e-3, "snntorch": 1e-4, "norse": 1e-3}[target]
    assert torch.allclose(run_nir(module, x, 4), expected, atol=1e-5)


def test_a_file_is_read_by_the_target_its_metadata_names_even_when_edited(tmp_path):
    path = tmp_path / "net.nir"
    x, expected = _write("nir", path, edits=dict(target="snntorch"))  # tau for dt = 1e-3, read as snnTorch does: dt = 1e-4
    module = load_nir(path)
    assert module.dt == 1e-4 and not torch.allclose(run_nir(module, x, 4), expected, atol=1e-2)
    with pytest.raises(SpikenasError, match=r"for snnTorch 1.0 .*, which runs every step as 0.0001 s; got dt=0.001"):
        load_nir(path, dt=1e-3)
    _write("nir", path, cells=(INTO_INPUT, FORWARD), edits=dict(target="norse"))  # norse runs no Delay
    with pytest.raises(ExportError, match="a Delay, which target norse's reader does not run"):
        load_nir(path)
    _write("nir", path, edits=dict(target="sinabs"))
    with pytest.raises(SpikenasError, match=f"written for target sinabs .*{RUN_BY_SPIKENAS}"):
        load_nir(path)
    _write("nir", path, edits=dict(target="loihi"))
    with pytest.raises(SpikenasError, match=f"written for unknown target 'loihi'; {RUN_BY_SPIKENAS}"):
        load_nir(path)


def test_a_file_without_a_target_runs_only_when_spikenas_wrote_it(tmp_path):
    path = tmp_path / "net.nir"
    x, expected = _write("nir", path, edits=dict(target=None))  # as spikenas wrote every file before targets existed
    assert torch.allclose(run_nir(load_nir(path), x, 4), expected, atol=1e-5)
    _write("nir", path, edits=dict(target=None, encoding=None))  # someone else's file: tau's units unknown
    with pytest.raises(SpikenasError, match=f"names no target in its metadata .*; {RUN_BY_SPIKENAS}") as error:
        load_nir(path)
    assert "\n" not in str(error.value)
    _write("nir", path, edits=dict(dt=None))
    with pytest.raises(SpikenasError, match=r"dt None is not a number of seconds > 0 \(give load_nir's dt\)"):
        load_nir(path)
    assert torch.allclose(run_nir(load_nir(path, dt=1e-3), x, 4), expected, atol=1e-5)
    path.write_text("not HDF5")
    with pytest.raises(SpikenasError, match=f"cannot read NIR file '{path}': .*signature not found"):
        load_nir(path)
