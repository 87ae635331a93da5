"""SNNClassifier: network from a genotype, loss and metrics, optimiser defaults, reports."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from host_reads import HostReads

from spikenas.data import Synthetic
from spikenas.base.errors import SpikenasError
from spikenas.train.classifier import SNNClassifier
from spikenas.neuron import LIF, record_spikes
from spikenas.space import MacroConfig
from spikenas.cost.synops import fan_outs

GENOTYPE = {"cells": [{"nodes": 4, "edges": [["conv3x3", 0, 1], ["skip", 0, 3], ["conv1x1", 1, 3]]}]}


def tiny_model(**kwargs) -> SNNClassifier:
    macro = MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=2, channels=4,
                        head_pool=2, head_hidden=8, votes=2, dropout=0.1)
    return SNNClassifier(**{"genotype": GENOTYPE, "macro": macro, "seed": 0, **kwargs})


def tiny_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(**{"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                         "enable_model_summary": False, "accelerator": "cpu", **kwargs})


def test_network_and_hparams():
    model = tiny_model()
    assert model.hparams.genotype == GENOTYPE
    assert model.hparams.macro["num_classes"] == 3
    # hparams are plain data: a model rebuilt from them has the same weights
    clone = SNNClassifier(**model.hparams)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), clone.state_dict().values()))
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 3)


def test_template_without_genotype_fails_to_fit():
    model = SNNClassifier(macro={"channels": 8})
    assert model.network is None and model.macro.channels == 8
    with pytest.raises(SpikenasError, match="genotype"):
        tiny_trainer(fast_dev_run=1).fit(model, Synthetic(num_classes=3, input_shape=(1, 8, 8)))


def test_default_optimizer_has_real_weight_decay_and_cosine_schedule():
    model = tiny_model()
    model.trainer = tiny_trainer(max_epochs=7)
    config = model.configure_optimizers()
    group = config["optimizer"].param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["dampening"]) == (0.1, 0.9, 5e-4, 0)
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    assert config["lr_scheduler"]["scheduler"].T_max == 7


def test_fit_logs_metrics_spike_rate_and_memory():
    model = tiny_model()
    dm = Synthetic(num_classes=3, input_shape=(1, 8, 8), train_size=64, test_size=16, batch_size=16)
    trainer = tiny_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=2)
    trainer.fit(model, dm)
    metrics = trainer.callback_metrics
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/spike_rate"):
        assert key in metrics, key
    assert "val/acc5" not in metrics  # top-5 only with more than 5 classes
    assert 0.0 <= float(metrics["val/spike_rate"]) <= 1.0
    lifs = [name for name, m in model.network.named_modules() if type(m).__name__ == "LIF"]
    layer_rates = {k: float(v) for k, v in metrics.items() if k.startswith("spikes/")}
    assert sorted(layer_rates) == sorted(f"spikes/{name}" for name in lifs)
    assert all(0.0 <= rate <= 1.0 for rate in layer_rates.values())
    report = model.memory_report()
    assert report.param_bytes == 4 * sum(p.numel() for p in model.network.parameters())
    predictions = trainer.predict(model, dm)
    assert predictions[0].shape == (16,) and predictions[0].dtype == torch.long
    (test,) = trainer.test(model, dm, verbose=False)
    assert set(test) >= {"test/acc", "test/loss"}


def test_top5_with_many_classes():
    model = tiny_model(macro=MacroConfig(input_shape=(1, 8, 8), num_classes=10, timesteps=2,
                                         channels=4, head_hidden=0, votes=1))
    assert set(model.val_metrics.keys()) == {"val/acc", "val/acc5"}


def test_bf16_mixed_precision_on_cpu():
    model = tiny_model()
    dm = Synthetic(num_classes=3, input_shape=(1, 8, 8), train_size=32, test_size=16, batch_size=16)
    trainer = tiny_trainer(fast_dev_run=1, precision="bf16-mixed")
    trainer.fit(model, dm)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


class _SyncSpy(pl.Callback):
    """Records the ops of one whole training step (forward, backward, optimiser, logging,
    metric updates) that read device values back to the host."""

    def __init__(self, batch: int) -> None:
        self.batch, self.mode = batch, HostReads()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.batch:
            self.mode.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == self.batch:
            self.mode.__exit__(None, None, None)


def test_training_step_never_waits_for_the_device():
    """No metric, loss log or optimiser op of a training step reads a value back to the host
    (on a GPU each would stall the launch queue); Lightning writes the loggers every 50 steps."""
    model = tiny_model(macro=MacroConfig(input_shape=(1, 8, 8), num_classes=10, timesteps=2,
                                         channels=4, head_hidden=0, votes=1))
    dm = Synthetic(num_classes=10, input_shape=(1, 8, 8), train_size=64, test_size=16, batch_size=16)
    spy = _SyncSpy(batch=2)
    tiny_trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=0, callbacks=[spy]).fit(model, dm)
    assert spy.mode.seen == []


def test_compiled_network_keeps_checkpoint_keys_and_outputs():
    eager, compiled = tiny_model(), tiny_model(compile=True)
    compiled.setup("fit")
    assert list(compiled.state_dict()) == list(eager.state_dict())
    x = torch.randn(4, 1, 8, 8)
    eager.eval(), compiled.eval()
    torch.testing.assert_close(compiled(x), eager(x))


def test_label_smoothing_applies_to_the_training_loss_only():
    smooth, plain = tiny_model(label_smoothing=0.2), tiny_model()
    smooth.eval(), plain.eval()  # no dropout: both see the same logits
    smooth.log = plain.log = lambda *args, **kwargs: None  # no trainer to log to
    x, y = torch.randn(6, 1, 8, 8) * 5, torch.zeros(6, dtype=torch.long)
    logits = plain(x)
    assert logits.std() > 0.01  # not uniform, where smoothing would change nothing
    torch.testing.assert_close(smooth.training_step((x, y), 0), torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.2))
    assert not torch.allclose(smooth.training_step((x, y), 0), plain.training_step((x, y), 0))
    with pytest.raises(SpikenasError, match="label_smoothing"):
        tiny_model(label_smoothing=1.0)


def test_learnt_time_constants_train_and_survive_hparams():
    model = tiny_model(neuron={"tau": 2.0, "learn_tau": True})
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("tau_logit")}
    assert len(before) >= 3  # the cell's conv, the head's two LIF layers
    dm = Synthetic(num_classes=3, input_shape=(1, 8, 8), train_size=64, test_size=16, batch_size=16)
    tiny_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=0).fit(model, dm)
    after = dict(model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert SNNClassifier(**model.hparams).neuron.learn_tau


def test_spike_rate_pass_bypasses_the_compiled_network():
    """The recorders would force a third compiled graph (25-40 s each on a CPU)."""
    model = tiny_model(compile=True)
    model.setup("fit")
    calls = []
    model.network._compiled_call_impl = lambda *a, **k: calls.append(1) or model.network._call_impl(*a, **k)
    logged = {}
    model.log = lambda name, value, **kwargs: logged.setdefault(name, value)
    model.eval()
    with torch.no_grad():
        model._log_spike_rate(torch.randn(4, 1, 8, 8) * 5)
        assert calls == []
        model(torch.randn(4, 1, 8, 8))
    assert calls == [1]  # the regular forward still runs compiled
    assert 0 < float(logged["val/spike_rate"]) < 1


def test_channels_last_keeps_values_and_checkpoint_keys():
    plain, last = tiny_model(), tiny_model(channels_last=True)
    last.setup("fit")
    conv = next(m for m in last.network.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert list(last.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(last.state_dict())  # checkpoints move between the two layouts
    plain.eval(), last.eval()
    x = torch.randn(4, 1, 8, 8) * 3
    torch.testing.assert_close(last(x), plain(x))


def test_layer_spike_rates_cover_every_timestep_of_cells_with_backward_edges(backward_cell):
    model = tiny_model(genotype={"cells": [backward_cell.to_dict()]})
    logged = {}
    model.log = lambda name, value, **kwargs: logged.setdefault(name, float(value))
    images = torch.randn(4, 1, 8, 8) * 3
    model.eval()
    with torch.no_grad():
        model._log_spike_rate(images)
        spikes, counts = {}, {}

        def record(name, s):
            spikes[name] = spikes.get(name, 0.0) + float(s.sum())
            counts[name] = counts.get(name, 0) + s.numel()

        with record_spikes(model.network, record, named=True):
            model.network(images)
    assert model.network.cells[0].recurrent
    for name in spikes:
        assert logged[f"spikes/{name}"] == pytest.approx(spikes[name] / counts[name])
    assert logged["val/spike_rate"] == pytest.approx(sum(spikes.values()) / sum(counts.values()))


def test_synops_are_spikes_times_the_synapses_each_neuron_drives(backward_cell):
    model = tiny_model(genotype={"cells": [backward_cell.to_dict(), backward_cell.to_dict()]})
    fan = fan_outs(model.network)
    c0, c1 = model.macro.cell_shape(0)[0], model.macro.cell_shape(1)[0]
    hidden, outputs = model.macro.head_hidden, model.macro.num_classes * model.macro.votes
    assert fan["cells.0.ops.0_1_conv3x3.0"] == c0 * 9 and fan["cells.1.ops.3_1_conv1x1.0"] == c1
    assert fan["reductions.0.1"] == c1 * 9  # BN -> LIF -> conv3x3 C -> 2C
    assert fan["head.features.1"] == hidden and fan["head.classifier.1"] == outputs  # pooling passes through
    assert set(fan) == {name for name, m in model.network.named_modules() if isinstance(m, LIF)}
    logged = {}
    model.log = lambda name, value, **kwargs: logged.setdefault(name, float(value))
    images = torch.randn(4, 1, 8, 8) * 3
    model.eval()
    with torch.no_grad():
        model._log_spike_rate(images)
        spikes = {}
        with record_spikes(model.network, lambda name, s: spikes.__setitem__(name, spikes.get(name, 0.0) + float(s.sum())), named=True):
            model.network(images)
    assert sum(spikes.values()) > 0
    for name in spikes:
        assert logged[f"synops/{name}"] == pytest.approx(spikes[name] * fan[name] / 4)
    assert logged["val/synops"] == pytest.approx(sum(spikes[n] * fan[n] for n in spikes) / 4)
