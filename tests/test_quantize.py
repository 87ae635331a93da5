"""Quantisation-aware training and the budget that travels from the search into ``fit``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from spikenas.app.cli import main
from spikenas.base.errors import SpikenasError
from spikenas.train.classifier import SNNClassifier
from spikenas.train.quantize import QuantizationConfig

SEARCH_CONFIG = str(Path(__file__).parent / "configs" / "search_tiny.yaml")


def weights(model: SNNClassifier) -> list[torch.Tensor]:
    return [m.weight.detach() for m in model.network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def classifier(genotype, tiny_macro, **kwargs) -> SNNClassifier:
    return SNNClassifier(genotype.to_dict(), tiny_macro, seed=0, **kwargs)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantised_weights_take_at_most_2_to_the_bits_values_per_channel(genotype, tiny_macro, bits):
    model = classifier(genotype, tiny_macro, quantization={"weight_bits": bits})
    tensors = weights(model)
    assert len(tensors) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.network.modules()) > 5
    for w in tensors:
        for channel in w.flatten(1):
            assert channel.unique().numel() <= 2**bits
        scale = w.flatten(1).abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
        integers = w.flatten(1) / scale
        assert torch.allclose(integers, integers.round(), atol=1e-3)  # integers times one scale


def test_per_tensor_quantisation_shares_one_scale(genotype, tiny_macro):
    model = classifier(genotype, tiny_macro, quantization={"weight_bits": 3, "per_channel": False})
    for w in weights(model):
        assert w.unique().numel() <= 2**3


def test_float_training_is_untouched(genotype, tiny_macro):
    plain = classifier(genotype, tiny_macro)
    assert all(w.unique().numel() > 16 for w in weights(plain) if w.numel() > 64)


def test_gradient_passes_straight_through_and_checkpoint_restores_the_network(genotype, tiny_macro):
    model = classifier(genotype, tiny_macro, quantization={"weight_bits": 4})
    images = torch.randn(6, *tiny_macro.input_shape)
    model(images).sum().backward()
    originals = [p for n, p in model.named_parameters() if n.endswith("parametrizations.weight.original")]
    assert originals and all(p.grad is not None and p.grad.abs().sum() > 0 for p in originals[:3])
    with torch.no_grad():  # train a little: the float weights move, the quantised ones follow
        for p in originals:
            p.add_(0.01 * torch.randn_like(p))
    restored = classifier(genotype, tiny_macro, quantization={"weight_bits": 4})
    restored.load_state_dict(model.state_dict())
    for a, b in zip(weights(model), weights(restored)):
        assert torch.equal(a, b)
    model.eval()
    restored.eval()
    assert torch.equal(model(images), restored(images))


def test_bad_bit_width_is_an_error():
    with pytest.raises(SpikenasError, match="weight_bits must be an integer in 2..16"):
        QuantizationConfig(weight_bits=1).check()


def search(tmp_path: Path, *extra: str) -> Path:
    main(["search", "--config", SEARCH_CONFIG, "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path), *extra])
    return sorted((tmp_path / "lightning_logs").glob("version_*"))[-1] / "final.yaml"


def test_an_8_bit_search_retrains_at_8_bits_within_its_budget(tmp_path):
    final = search(tmp_path, "--budget", "20KB", "--cost_options", "{weight_bits: 8}")
    model = yaml.safe_load(final.read_text())["model"]
    assert model["budget"] == 20_000 and model["cost_model"] == "memory"
    assert model["cost_options"] == {"weight_bits": 8}
    assert model["quantization"] == {"weight_bits": 8, "per_channel": True}
    main(["fit", "--config", str(final), "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path / "fit")])
    float_final = yaml.safe_load(search(tmp_path / "f32").read_text())["model"]
    assert float_final["quantization"]["weight_bits"] is None and float_final["budget"] is None


@pytest.mark.parametrize("override, message", [
    (["--model.budget", "100"], "exceeds its budget of 100 bytes"),
    (["--model.quantization.weight_bits", "null"], "counts 8-bit weights but the network trains 32-bit ones"),
])
def test_fit_refuses_a_network_that_is_not_the_budgeted_one(tmp_path, override, message):
    final = search(tmp_path, "--budget", "20KB", "--cost_options", "{weight_bits: 8}")
    with pytest.raises(SystemExit) as error:
        main(["fit", "--config", str(final), "--trainer.fast_dev_run", "1",
              "--trainer.default_root_dir", str(tmp_path / "fit"), *override])
    text = str(error.value.code)
    assert text.startswith("spikenas: error: ") and message in text and "\n" not in text


@pytest.mark.slow  # real trainings: .ci/run's slow step
@pytest.mark.parametrize("bits", [4, 8])
def test_a_quantised_network_learns_in_a_short_training(genotype, bits):
    """4- and 8-bit QAT train: the short training the search's trials use takes a quantised
    network from chance (1/3) to well above it on separable synthetic images."""
    from functools import partial

    from spikenas.data import Synthetic
    from spikenas.space import MacroConfig
    from spikenas.train.short_training import candidate_model, train_in_chunks

    data = Synthetic(num_classes=3, input_shape=(1, 8, 8), train_size=192, test_size=24, signal=2.0, batch_size=16,
                     val_split=0.25)
    macro = MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=3, channels=8, head_hidden=0, head_pool=2,
                        votes=2, dropout=0.0)
    template = SNNClassifier(macro=macro, optimizer=partial(torch.optim.Adam, lr=0.01))
    model = candidate_model(template, genotype, macro, bits, seed=0, budget=None, cost_options={"weight_bits": bits})
    assert model.quantization.weight_bits == bits
    accuracy = train_in_chunks(model, data, chunks=3, chunk_batches=9, val_images=48, seed=0, device=torch.device("cpu"))
    assert accuracy > 0.8
