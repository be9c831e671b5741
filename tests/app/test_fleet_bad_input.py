"""Bad input to the fleet options and commands: one `error:` line naming the problem and the fix, nothing stored.
None of these needs a running cluster: each is refused before one is reached."""

from __future__ import annotations

import sys

import pytest

from tests.app.cli_harness import assert_clean_failure

CASES = [
    (["profile", "{art}", "--on", "a,,b"], "empty or repeated"),
    (["profile", "{art}", "--on", "pi5,pi5"], "empty or repeated"),
    (["profile", "{art}", "--on", "bad name!"], "device name"),
    (["profile", "{art}", "--on", "pi5", "--address", "nowhere"], "HOST:PORT"),
    (["profile", "{art}", "--on", "pi5", "--address", "127.0.0.1:70000"], "HOST:PORT"),
    (["run", "--on", "-x", "--papers", "baselines"], "device name"),
    (["agent", "--address", "127.0.0.1:6379", "--name", "x y"], "device name"),
    (["agent", "--address", "127.0.0.1:6379"], "--name"),
    (["agent", "--address", "127.0.0.1:6379", "--name", "pi5", "--num-cpus", "0"], "below 1"),
    (["agent", "--address", "127.0.0.1:6379", "--name", "pi5", "--runtimes", "tensorrt"], "tensorrt"),
    (["head", "--port", "0"], "below 1"),
    (["head", "--host", "a b"], "HOST:PORT"),
]


@pytest.mark.parametrize("argv,mentions", CASES)
def test_bad_fleet_options(argv, mentions, tmp_path, capsys) -> None:
    art = tmp_path / "m.onnx"
    art.write_bytes(b"not used: refused first")
    argv = [a.replace("{art}", str(art)) for a in argv]
    assert_clean_failure([*argv, *(["-w", str(tmp_path / "ws")] if argv[0] in ("profile", "run") else [])], capsys,
                         tmp_path / "ws", mentions=mentions)


def test_unreachable_head_is_one_line(tmp_path, capsys) -> None:
    pytest.importorskip("ray", reason="with Ray missing the install message comes first (test below)")
    assert_clean_failure(["devices", "--address", "127.0.0.1:1"], capsys, tmp_path / "ws",
                         mentions="no Ray head answers at 127.0.0.1:1")
    assert_clean_failure(["agent", "--address", "127.0.0.1:1", "--name", "pi5"], capsys, tmp_path / "ws",
                         mentions="edgezoo head")


def test_without_ray_the_commands_say_how_to_get_it(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is not installed
    for argv in (["devices"], ["agent", "--address", "127.0.0.1:6379", "--name", "pi5"]):
        assert_clean_failure(argv, capsys, tmp_path / "ws", mentions="pip install 'edgezoo[fleet]'")
