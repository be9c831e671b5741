"""Runtimes that misbehave on purpose, loaded by the child as `tests.profiles.fault_runtimes:Name`."""

from __future__ import annotations

import os
import time

from profiles.runtimes.onnxruntime_rt import OnnxRuntime


class Crashes(OnnxRuntime):
    def run(self, inputs):
        os.abort()  # SIGABRT, as a native crash would


class Hangs(OnnxRuntime):
    def run(self, inputs):
        time.sleep(3600)


class Raises(OnnxRuntime):
    def run(self, inputs):
        raise RuntimeError("kernel exploded")
