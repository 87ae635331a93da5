"""``spikenas profile``: a config's footprint without training or data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spikenas.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY_SEARCH = str(ROOT / "tests" / "configs" / "search_tiny.yaml")


def profile(capsys, *args: str) -> str:
    main(["profile", *args])
    return capsys.readouterr().out


def test_fit_config_prints_the_memory_table_and_the_budget_verdict(tmp_path, capsys):
    out = profile(capsys, "--config", str(ROOT / "configs" / "snasnet_cifar10.yaml"))
    total = next(line for line in out.splitlines() if line.startswith("total (memory)"))
    assert total.split()[2] == "19,520,356" and "cell0.2>0:conv1x1" in out
    main(["search", "--config", TINY_SEARCH, "--budget", "20KB", "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path)])
    final = sorted((tmp_path / "lightning_logs").glob("version_*"))[-1] / "final.yaml"
    capsys.readouterr()
    out = profile(capsys, "--config", str(final))
    memory_table = (final.parent / "memory.txt").read_text().split("\n\n")[0].strip()
    assert memory_table in out  # the search's own report
    assert "budget: 20,000 bytes (19.53 KiB): the network fits" in out
    tight = tmp_path / "tight.yaml"
    tight.write_text(yaml.safe_dump({"model": {"budget": 100}}))
    assert "the network exceeds it by" in profile(capsys, "--config", str(final), "--config", str(tight))


def test_search_config_prints_the_macro_and_the_footprint_range(capsys):
    out = profile(capsys, "--config", str(ROOT / "configs" / "search.yaml"))
    assert out.startswith("no genotype: a search config. The budget fixes the macro channels=32")
    assert "budget 262,144 bytes" in out and "the cheapest network:" in out


@pytest.mark.parametrize("args, message", [
    (["--config", "missing.yaml"], "cannot read config missing.yaml"),
    ([], "profile needs a config"),
    (["--budget", "1"], "unexpected argument '--budget'"),
])
def test_profile_errors_are_one_line(args, message):
    with pytest.raises(SystemExit) as error:
        main(["profile", *args])
    assert message in str(error.value.code) and "\n" not in str(error.value.code)


def test_config_without_data_is_an_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"genotype": {"cells": [{"cnt_mat": "0303 0030 2002 0200"}]}}}))
    with pytest.raises(SystemExit) as error:
        main(["profile", "--config", str(config)])
    assert "names no data" in str(error.value.code)


def test_fit_config_lists_the_layers_as_hardware_sees_them(capsys):
    out = profile(capsys, "--config", str(ROOT / "configs" / "snasnet_cifar10.yaml"))
    table = out.split("as hardware sees it (per sample and timestep):\n")[1]
    assert table.splitlines()[0].split() == ["layer", "kind", "input", "output", "kernel", "fan-in", "fan-out", "neurons"]
    assert "head.classifier.0                   linear                 8192        1024" in table
