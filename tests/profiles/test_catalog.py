"""The device catalog: every figure has a public source, derived figures say how, bad files are refused."""

from __future__ import annotations

import pytest

from profiles.catalog import FIGURES, CatalogError, UnknownDeviceError, get_device, load_devices, parse_device

REQUIRED = ("apple-m1-cpu", "apple-m1-gpu", "apple-m1-ane", "apple-m4-cpu", "apple-m4-gpu", "apple-m4-ane",
            "apple-a17-pro-gpu", "apple-a17-pro-ane", "snapdragon-8-gen-3-cpu", "raspberry-pi-5",
            "jetson-orin-nano", "nvidia-h100-sxm")

GOOD = """name: toy
title: Toy
kind: cpu
vendor: Nobody
peak: {fp32: 1.0e+9, fp16: null, int8: null}
memory_bandwidth: 1.0e+9
memory_bytes: 1024
compute_units: 2
sources: {peak.fp32: https://example.org/a, memory_bandwidth: https://example.org/b,
          memory_bytes: https://example.org/c, compute_units: https://example.org/d}
"""


def test_catalog_has_the_devices() -> None:
    devices = load_devices()
    assert set(REQUIRED) <= set(devices)
    assert {d.kind for d in devices.values()} >= {"cpu", "gpu", "npu"}


@pytest.mark.parametrize("name", REQUIRED)
def test_every_figure_has_a_public_source(name: str) -> None:
    dev = load_devices()[name]
    for key in FIGURES:
        if dev.figure(key) is not None:
            assert dev.sources[key].startswith("https://"), (name, key)
    assert any(dev.peak.values()) and dev.memory_bandwidth, name


@pytest.mark.parametrize("name", REQUIRED)
def test_figures_are_plausible(name: str) -> None:
    dev = load_devices()[name]
    for value in filter(None, dev.peak.values()):
        assert 1e10 <= value <= 1e16, (name, value)  # 10 GFLOP/s .. 10 PFLOP/s
    assert 5e9 <= dev.memory_bandwidth <= 1e13 and dev.memory_bytes >= 1 << 30 and dev.compute_units >= 1
    for key, note in dev.notes.items():
        assert key in FIGURES or key == "general"
        assert note.strip(), (name, key)


def test_derived_figures_say_so() -> None:
    """CPU peaks are never on a vendor page: each one must carry a 'derived' note."""
    for dev in load_devices().values():
        if dev.kind == "cpu":
            assert "derived" in dev.notes.get("peak.fp32", ""), dev.name


def test_valid_file_parses(tmp_path) -> None:
    (tmp_path / "toy.yaml").write_text(GOOD)
    dev = parse_device(tmp_path / "toy.yaml")
    assert dev.peak == {"fp32": 1e9, "fp16": None, "int8": None} and dev.compute_units == 2


@pytest.mark.parametrize("edit,match", [
    (lambda t: t + "colour: red\n", "unknown keys"),
    (lambda t: t.replace("  memory_bytes: https://example.org/c,", ""), "memory_bytes has no public source"),
    (lambda t: t.replace("fp16: null", "fp16: 2.0e+9"), "peak.fp16 has no public source"),
    (lambda t: t.replace("memory_bandwidth: 1.0e+9\n", "memory_bandwidth: 1e9\n"), "positive number"),
    (lambda t: t.replace("kind: cpu", "kind: toaster"), "kind"),
    (lambda t: t.replace("name: toy", "name: other"), "file name"),
    (lambda t: t.replace("compute_units: 2\n", ""), "missing keys"),
    (lambda t: t.replace("int8: null}", "int8: null, bf16: 1.0e+9}"), "peak must map"),
    (lambda t: t.replace("https://example.org/a", "see the datasheet"), "peak.fp32 has no public source"),
])
def test_bad_files_are_refused(tmp_path, edit, match) -> None:
    (tmp_path / "toy.yaml").write_text(edit(GOOD))
    with pytest.raises(CatalogError, match=match):
        parse_device(tmp_path / "toy.yaml")


def test_unknown_device_names_the_catalog() -> None:
    with pytest.raises(UnknownDeviceError, match="raspberry-pi-5"):
        get_device("pi-6")
