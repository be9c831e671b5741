"""The per-operator latency model: the ONNX graph reader's op counts, FLOPs and precisions on small graphs built
here, the NNLS fit recovering known coefficients, leave-one-architecture-out keeping the held-out model out of the
fit, and store records turned into samples (or skipped with the reason)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from profiles import latency_model as LM
from profiles.record import Artifact, Device, Latency, Record, Scenario


def _init(name: str, shape: tuple[int, ...], dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, dtype=dtype), name)


def tiny_cnn(path: Path, cast_last: bool = False) -> Path:
    """input (batch, 3, 8, 8) -> Conv 3->4 3x3 pad 1 -> Relu -> depthwise Conv 3x3 -> GlobalAveragePool -> Flatten
    -> Gemm 4->10. With cast_last, an fp16 Cast feeding the first conv is listed after every other node."""
    first = "x16" if cast_last else "input"
    nodes = [helper.make_node("Conv", [first, "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=4),
             helper.make_node("GlobalAveragePool", ["c2"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w3"], ["logits"], transB=1)]
    dt, np_dt = (TensorProto.FLOAT16, np.float16) if cast_last else (TensorProto.FLOAT, np.float32)
    if cast_last:
        nodes.append(helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", dt, ["batch", 10])],
        [_init("w1", (4, 3, 3, 3), np_dt), _init("w2", (4, 1, 3, 3), np_dt), _init("w3", (10, 4), np_dt)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_graph_reader_counts_ops_flops_and_bytes(tmp_path: Path) -> None:
    g = LM.read_graph(tiny_cnn(tmp_path / "m.onnx"))
    assert g.counts() == {"Conv": 2, "Relu": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    by = {op.op_type + op.kind: op for op in g.ops}
    assert by["Convconv"].flops == 2 * (4 * 8 * 8) * (3 * 3 * 3)      # dense conv at batch 1
    assert by["Convdwconv"].flops == 2 * (4 * 8 * 8) * (1 * 3 * 3)    # group=4: depthwise
    assert by["Gemmmatmul"].flops == 2 * 10 * 4
    assert by["Convconv"].bytes == 4 * (3 * 8 * 8 + 4 * 3 * 3 * 3 + 4 * 8 * 8)  # input, weight, output in fp32
    assert {op.precision for op in g.ops} == {"fp32"}
    feats = LM.features(g)
    assert feats["count conv:fp32"] == 1 and feats["count dwconv:fp32"] == 1 and feats["call"] == 1
    assert "flops act:fp32" not in feats  # only compute kinds carry a throughput term
    assert feats["flops dense:fp32"] == by["Convconv"].flops + by["Gemmmatmul"].flops  # both run as GEMMs
    assert feats["flops dwconv:fp32"] == by["Convdwconv"].flops


def test_graph_reader_orders_nodes_and_reads_fp16(tmp_path: Path) -> None:
    g = LM.read_graph(tiny_cnn(tmp_path / "m16.onnx", cast_last=True))
    conv = next(op for op in g.ops if op.kind == "conv")
    assert conv.precision == "fp16" and conv.flops == 2 * (4 * 8 * 8) * 27  # shapes survive the late Cast
    assert conv.bytes == 2 * (3 * 8 * 8 + 4 * 27 + 4 * 8 * 8)


def test_shapes_carry_through_ops_inference_does_not_know(tmp_path: Path) -> None:
    nodes = [helper.make_node("GroupNormalization", ["input", "g", "b"], ["n"], num_groups=2),
             helper.make_node("Conv", ["n", "w"], ["out"])]
    graph = helper.make_graph(nodes, "gn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [_init("g", (4,)), _init("b", (4,)), _init("w", (8, 4, 3, 3))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(tmp_path / "gn.onnx"))
    conv = next(op for op in LM.read_graph(tmp_path / "gn.onnx").ops if op.op_type == "Conv")
    assert conv.flops == 2 * (8 * 4 * 4) * (4 * 3 * 3)  # the conv after GroupNormalization still has its shapes


def test_integer_and_qdq_kernels_count_as_int8(tmp_path: Path) -> None:
    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]),
             helper.make_node("MatMul", ["dq", "w"], ["out"]),
             helper.make_node("MatMulInteger", ["q", "wq"], ["out_i"])]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 4]),
                               helper.make_tensor_value_info("out_i", TensorProto.INT32, [2, 4])],
                              [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                               numpy_helper.from_array(np.array(0, np.int8), "z"), _init("wq", (8, 4), np.int8)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "q.onnx"))
    ops = {op.op_type: op for op in LM.read_graph(tmp_path / "q.onnx").ops}
    assert ops["MatMul"].precision == "int8-qdq" and ops["MatMulInteger"].precision == "int8-dynamic"
    assert ops["MatMul"].flops == ops["MatMulInteger"].flops == 2 * 2 * 4 * 8
    assert ops["QuantizeLinear"].kind == "quant"


def test_fit_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(0)
    truth = {"call": 0.05, "count conv:fp32": 0.01, "flops dense:fp32": 2e-8, "bytes other:fp32": 5e-8,
             "count other:fp32": 0.0}
    rows = [{k: (1.0 if k == "call" else float(rng.uniform(1, 100) * (1e6 if k[0] in "fb" else 1)))
             for k in truth} for _ in range(40)]
    y = [sum(truth[k] * r[k] for k in truth) for r in rows]
    got = LM.fit(rows, y)
    for k, v in truth.items():
        assert got.coef[k] == pytest.approx(v, rel=1e-6, abs=1e-12)
    assert got.predict(rows[0]) == pytest.approx(y[0], rel=1e-9)
    assert "flops dense:fp32 GFLOP/s" in got.describe()


def test_fit_rejects_bad_medians() -> None:
    with pytest.raises(ValueError, match="positive"):
        LM.fit([{"call": 1.0}], [0.0])


def test_leave_one_out_excludes_the_held_out_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [LM.Sample(arch, f"{arch}{i}", 1.0 + i, {"call": 1.0, f"count {arch}": float(i + 1)})
               for arch in ("a", "b", "c") for i in range(3)]
    seen: list[list[dict]] = []
    real = LM.fit
    monkeypatch.setattr(LM, "fit", lambda rows, y: seen.append(rows) or real(rows, y))
    rows = LM.leave_one_out(samples, [s for s in samples if s.arch == "c"])
    assert len(seen) == 1 and len(seen[0]) == 6  # one fit per held-out architecture, on the other two
    assert all(r is not s.feats for r in seen[0] for s in samples if s.arch == "c")
    assert {r["arch"] for r in rows} == {"c"} and all(r["trained_on"] == 6 for r in rows)
    # a feature only the held-out architecture has gets no coefficient: its time is not learned from itself
    assert all(r["predicted_ms"] == pytest.approx(rows[0]["predicted_ms"]) for r in rows)
    s = LM.summary([{"error": 0.05}, {"error": -0.2}, {"error": 0.0}])
    assert s["within"] == pytest.approx(2 / 3) and s["median_abs_error"] == pytest.approx(0.05)


def _record(tmp_path: Path, model: str, ms: float, device: str = "host", fmt: str = "onnx", status: str = "ok",
            scale: str | None = "deploy") -> dict:
    folder = tmp_path / f"{model}-{fmt}"
    folder.mkdir(exist_ok=True)
    tiny_cnn(folder / "model.onnx")
    rec = Record(model=model, artifact=Artifact(path=str(folder), format=fmt, compression="none"),
                 runtime="onnxruntime" if fmt == "onnx" else fmt, threads=2, scenario=Scenario("classify"),
                 device=Device(id=device), latency=Latency(median_ms=ms), extra={"scale": scale} if scale else {})
    rec.status.status = status
    return {**rec.to_dict(), "id": len(list(tmp_path.iterdir()))}


def test_samples_from_records_keep_host_onnx_ok_only(tmp_path: Path) -> None:
    recs = [_record(tmp_path, "a", 2.0), _record(tmp_path, "b", 3.0, scale=None),
            _record(tmp_path, "c", 1.0, device="other"), _record(tmp_path, "d", 1.0, fmt="mlx"),
            _record(tmp_path, "e", 1.0, status="failed")]
    samples, skipped = LM.samples_from_records(recs, "host")
    assert [(s.arch, s.scale) for s in samples] == [("a", "deploy"), ("b", "small")]
    assert {s["model"]: s["reason"] for s in skipped} == {
        "c": "measured on another machine", "d": "not an ONNX artifact measured by onnxruntime",
        "e": "status failed"}
    out = LM.evaluate_store(recs, "host")
    assert [r["arch"] for r in out["rows"]] == ["a"] and out["problem"] is None
