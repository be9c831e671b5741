"""The export arrow, for vision and language models alike: checkpoint -> torch-level compression -> the format's
plug-in (exporters/formats.py) -> verify -> manifest.json (one schema; task-specific fields beside the core ones).

A classifier's artifact folder holds the model file of one format, `eval.npz` (held-out test inputs, labels and the
fp32 torch reference outputs, so a profiling child needs neither torch nor the training data) and `manifest.json`.
A language model's holds one sub-folder (onnx/, mlx/, coreml/ or checkpoint/), `manifest.json` and, for the LM
profiler and older readers, `lm_manifest.json` (the same manifest, `compression` as the short LM name).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exporters.compression import CompressionSpec, compress_, lm_name, parse_spec
from exporters.compression.torch_level import compress_lm_, compressible_layers, weight_sparsity
from exporters.cost import try_model_cost
from exporters.formats import LM, SUFFIXES, Exporter, task_of
from exporters.formats import get as get_exporter
from exporters.output import check_out_dir, publish, resolve_out, staging
from models import checkpoint
from models.checkpoint import file_sha256
from models.errors import ArtifactError, ConversionError
from models.registry import example_inputs, exportable
from trainers.data import load_dataset

MANIFEST = "manifest.json"
EVAL_DATA = "eval.npz"
LM_MANIFEST = "lm_manifest.json"
EXPORTER_VERSION = 5  # 2: FLOP counts, Core ML stores LCS masks sparse; 4: one manifest schema for vision and LMs;
#                       5: eval.npz carries validation images for static-quantization calibration


@dataclass
class Artifact:
    path: Path          # the artifact folder
    manifest: dict[str, Any]

    @property
    def model_file(self) -> Path:
        return self.path / self.manifest["model_file"]


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("torch", "numpy", "onnx", "onnxruntime", "coremltools", "mlx", "safetensors"):
        try:
            out[mod] = importlib.metadata.version(mod)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def path_size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def dir_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's (relative path, file hash) list for .mlpackage bundles."""
    if path.is_file():
        return file_sha256(path)
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def weight_count(model: nn.Module) -> int:
    """Conv and linear weights: the denominator of bits per weight. The numerator is every stored parameter
    byte (weights, biases, scales, zero points, palettes, masks), so small overheads are charged, not hidden."""
    return sum(m.weight.numel() for _, m in compressible_layers(model))


def input_specs(inputs: tuple[torch.Tensor, ...], dynamic_batch: bool,
                names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    return [{"name": names[i] if names else f"input_{i}" if i else "input",
             "shape": [None if (dynamic_batch and d == 0) else s for d, s in enumerate(t.shape)],
             "dtype": str(t.dtype).removeprefix("torch.")} for i, t in enumerate(inputs)]


@torch.no_grad()
def write_eval_data(model: nn.Module, card: dict[str, Any], out_dir: Path) -> None:
    """Held-out test split + the outputs of the torch model handed to the exporter (fp32, after torch-level
    compression such as pruning): parity then measures what the format did, accuracy what compression did."""
    from exporters.onnx import CALIBRATION_ROWS

    if card.get("scale") == "deploy":
        return write_seeded_eval_data(model, card, out_dir)
    if card.get("eval_inputs"):
        return write_named_eval_data(model, card, out_dir)
    data = load_dataset(card.get("dataset", "digits"))
    ref = plain_logits(model(torch.from_numpy(data.test.x)), card["model"]).numpy()
    calib = data.val.x[:CALIBRATION_ROWS]  # static quantization calibrates here, never on the split it is scored on
    np.savez_compressed(out_dir / EVAL_DATA, x=data.test.x, y=data.test.y, reference=ref, calib=calib,
                        source=f"the validation split of {data.name} ({len(calib)} images)")


DEPLOY_EVAL_ROWS = 8
DEPLOY_MIN_SQNR_DB = 20.0  # parity of seeded random weights (exporters/verify.numeric_parity)


@torch.no_grad()
def write_seeded_eval_data(model: nn.Module, card: dict[str, Any], out_dir: Path) -> None:
    """Deployment-scale checkpoints (app/deploy.py) have no dataset at their input size: the model's own example
    inputs, seeded, and its outputs for parity; no labels (quality not measured); other seeded inputs to calibrate
    on. Stored as x, x_1, ... and calib, calib_1, ... (one per model input)."""
    torch.manual_seed(0)
    xs, calib = example_inputs(model, DEPLOY_EVAL_ROWS), example_inputs(model, DEPLOY_EVAL_ROWS)
    ref = plain_logits(model(*xs), card["model"]).numpy()
    arrays = {(f"{k}_{i}" if i else k): t.numpy() for k, ts in (("x", xs), ("calib", calib)) for i, t in enumerate(ts)}
    np.savez_compressed(out_dir / EVAL_DATA, **arrays, reference=ref, min_sqnr_db=DEPLOY_MIN_SQNR_DB,
                        quality="not measured (deployment scale: seeded weights)",
                        source=f"seeded example inputs ({DEPLOY_EVAL_ROWS} rows): deployment scale")


@torch.no_grad()
def write_named_eval_data(model: nn.Module, card: dict[str, Any], out_dir: Path, batch: int = 64) -> None:
    """A checkpoint whose model does not take images names, in its card's `eval_inputs` ("module:function"), the
    function giving its held-out inputs: function(card) -> {"x": [arrays, one per input], "y", "calib": [arrays],
    "source"}. Stored as x, x_1, ... and calib, calib_1, ... (the layout of a user model's eval.npz)."""
    from exporters.onnx import CALIBRATION_ROWS

    module, _, name = str(card["eval_inputs"]).partition(":")
    data = getattr(importlib.import_module(module), name)(card)
    xs, calib = data["x"], [c[:CALIBRATION_ROWS] for c in data["calib"]]
    ref = torch.cat([plain_logits(model(*(torch.from_numpy(x[i:i + batch]) for x in xs)), card["model"])
                     for i in range(0, len(xs[0]), batch)]).numpy()
    arrays = {"x": xs[0], **{f"x_{i}": x for i, x in enumerate(xs[1:], 1)},
              "calib": calib[0], **{f"calib_{i}": c for i, c in enumerate(calib[1:], 1)}}
    np.savez_compressed(out_dir / EVAL_DATA, **arrays, y=data["y"], reference=ref, source=np.array(data["source"]))


def declared_io(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Any:
    """A model that takes several inputs (ByteFormer: int32 byte tokens and a padding mask) declares their names in
    `input_names`; it is exported with those names and one dynamic batch shared by every input, and verified like a
    user model with named inputs (exporters/own.py). Image classifiers declare none: None."""
    names = getattr(model, "input_names", None)
    if not names:
        return None
    from exporters.own_source import MAX_BATCH, IOSpec

    return IOSpec(tuple(names), ("logits",), tuple(((0, "batch", 1, MAX_BATCH),) for _ in inputs))


def plain_logits(out: Any, model_name: str) -> torch.Tensor:
    """A classifier's eval output must be one logits tensor: None, a dict or a tuple (e.g. upstream RangeAugment's
    {"logits", "augmented_tensor": None}) would be traced into a broken artifact, so the export stops here."""
    if not isinstance(out, torch.Tensor):
        raise ConversionError(f"{model_name} returns {type(out).__name__} in eval mode, not a logits tensor",
                              "give the model an exportable() that returns the network without training-only "
                              "outputs (e.g. an augmentor)")
    return out


def compressed_model(ckpt_dir: Path, card: dict[str, Any], spec: CompressionSpec) -> nn.Module:
    """The checkpoint after torch-level compression. Pruning fine-tunes with a fixed seed in every export, so each
    format exported from one checkpoint and spec starts from the same weights."""
    model = exportable(checkpoint.load(ckpt_dir)[0])
    needs_data = spec.method == "prune" and spec.finetune
    return compress_(model, spec, load_dataset(card.get("dataset", "digits")).train if needs_data else None)


def conversion_summary(err: Exception) -> str:
    """One line from a converter's (often multi-page) error: the aten op it choked on, if it says."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    ops = sorted(set(re.findall(r"aten\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?", text)))
    first = (text.strip().splitlines() or [err.__class__.__name__])[0][:200]
    return f"unsupported op {', '.join(ops)} ({first})" if ops else f"{err.__class__.__name__}: {first}"


def default_out_dir(workspace: Path, card: dict[str, Any], ckpt_hash: str, fmt: str, spec: CompressionSpec,
                    ckpt_dir: Path | None = None) -> Path:
    """One folder per (checkpoint content, format, compression): two checkpoints never share an export. Language
    models are named by their checkpoint folder (every OpenELM's card says "openelm")."""
    if task_of(card) == LM:
        name = Path(ckpt_dir).resolve().name if ckpt_dir is not None else card["model"]
        return Path(workspace) / "artifacts" / f"{name}-{ckpt_hash[:10]}" / f"lm-{fmt}-{spec.name}"
    return Path(workspace) / "artifacts" / f"{card['model']}-{ckpt_hash[:10]}" / f"{fmt}-{spec.name}"


def export_checkpoint(ckpt_dir: Path, fmt: str, spec_text: str = "none", out_dir: Path | None = None,
                      workspace: Path | None = None, force: bool = False) -> Artifact:
    """Export one checkpoint (classifier or language model, from its card's task) to one format and compression;
    reuse an up-to-date artifact unless `force`."""
    exporter = get_exporter(fmt)
    model, card = checkpoint.load(ckpt_dir)
    task = task_of(card)
    spec = parse_spec(spec_text, fmt, task)
    ckpt_hash = checkpoint.checkpoint_hash(ckpt_dir)
    named = out_dir is not None  # a folder the user named is replaced only with force; the default one is ours
    if out_dir is None:
        out_dir = default_out_dir(workspace or Path(os.environ.get("EDGEZOO_WORKSPACE", "edgezoo-workspace")),
                                  card, ckpt_hash, fmt, spec, ckpt_dir)
    out_dir = resolve_out(out_dir)
    cache_key = {"checkpoint_sha256": ckpt_hash, "format": fmt, "compression": spec.to_dict(),
                 "exporter_version": EXPORTER_VERSION, "task": task}
    if not force and (existing := _reusable(out_dir, cache_key)) is not None:
        return existing
    may_replace = force or not named
    check_out_dir(out_dir, may_replace)
    with staging(out_dir) as tmp:
        build = _export_lm_into if task == LM else _export_into
        manifest = {**cache_key, "model": card["model"], "paper": card.get("paper"), "compression_name": spec.name,
                    "checkpoint": str(Path(ckpt_dir).resolve()), "model_file": exporter.artifact_file(task),
                    **({"scale": card["scale"]} if card.get("scale") else {})}  # app/deploy.py: "deploy"
        t0 = time.perf_counter()
        build(tmp, exporter, model, card, ckpt_dir, spec, manifest, t0)
        write_manifest(tmp, manifest)
        publish(tmp, out_dir, may_replace)
    return Artifact(out_dir, manifest)


def _convert(exporter: Exporter, model_card: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return exporter.export(*args, **kwargs)
    except ConversionError:
        raise
    except Exception as e:  # converters raise anything: name the op when the message does
        raise ConversionError(f"{exporter.name} conversion of {model_card['model']} failed: {conversion_summary(e)}",
                              "try another format or compression, or replace the unsupported op in the model") from None


def _finish(tmp: Path, manifest: dict[str, Any], t0: float, bits_per_weight: float | None,
            details: dict[str, Any]) -> None:
    """The core fields every manifest has, counted from the files in the staging folder `tmp`."""
    model_file = tmp / manifest["model_file"]
    manifest.update(size_bytes=path_size(model_file), sha256=dir_sha256(model_file), bits_per_weight=bits_per_weight,
                    export_seconds=time.perf_counter() - t0, export_details=details, tool_versions=tool_versions(),
                    git_commit=git_commit(), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def _export_into(tmp: Path, exporter: Exporter, model: nn.Module, card: dict[str, Any], ckpt_dir: Path,
                 spec: CompressionSpec, manifest: dict[str, Any], t0: float) -> None:
    """Classifiers: compress, convert, write eval data and verify into the staging folder `tmp`."""
    reference = exportable(model)
    n_weights = weight_count(reference)
    compressed = compressed_model(ckpt_dir, card, spec)
    inputs = example_inputs(compressed, 1)
    cost = try_model_cost(compressed, inputs)  # FLOPs + fp32 activation bytes at batch 1, before any exporter casts
    write_eval_data(compressed, card, tmp)  # before export: some exporters cast the model in place
    sizes = tuple(card.get("input_sizes") or ())  # multi-scale models (trainers/samplers.py): every size trained at
    io = declared_io(compressed, inputs)
    info = _convert(exporter, card, compressed, tmp, spec, inputs=inputs, sizes=sizes, io=io)
    _finish(tmp, manifest, t0, 8.0 * info["weight_bytes"] / n_weights,
            {k: v for k, v in info.items() if k not in ("weight_bytes",)})
    manifest.update(model_args=card["args"], n_weights=n_weights, weight_bytes=info["weight_bytes"], cost=cost,
                    inputs=input_specs(inputs, info.get("dynamic_batch", False), io.inputs if io else None),
                    outputs=[{"name": "logits", "shape": [None, card["args"].get("num_classes", 10)]}],
                    sparsity=weight_sparsity(compressed))
    if (report := getattr(compressed, "compression_report", None)) is not None:  # datafree: bits, MSE, time per layer
        manifest["compression_report"] = report
    if sizes:  # the square sizes the artifact takes (checked per format); profiles measure each
        manifest["input_sizes"] = info.get("input_sizes", [])
    if io is not None:  # named inputs: verified from eval.npz's x, x_1, ... as a user model's artifact is
        from exporters.own import verify_own

        manifest["verification"] = verify_own(exporter.name, Artifact(tmp, manifest), io)
    else:
        manifest["verification"] = exporter.verify(reference, Artifact(tmp, manifest))


def _export_lm_into(tmp: Path, exporter: Exporter, model: nn.Module, card: dict[str, Any], ckpt_dir: Path,
                    spec: CompressionSpec, manifest: dict[str, Any], t0: float) -> None:
    """Language models: torch-level compression unless the format's own library quantizes (onnxruntime, mlx-lm,
    coremltools for int8/int4), then the format's plug-in. SeedLM and torch RTN are stored as reconstructed dense
    weights; bits_per_weight is then the packed count, as `weights_note` says."""
    info = {"bits_per_weight": None} if spec.method in exporter.native_lm else compress_lm_(model, spec)
    details = _convert(exporter, card, model, tmp, spec, task=LM, card=card)
    verification = details.pop("verification", None)
    bits = details.pop("bits_per_weight", None) or info.pop("bits_per_weight")
    info.pop("bits_per_weight", None)
    _finish(tmp, manifest, t0, bits, details)
    manifest.update(model_args=card["args"], vocab_size=model.args.vocab_size, **info)
    manifest["verification"] = verification or exporter.verify(model, Artifact(tmp, manifest), LM)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    if manifest.get("task") == LM:  # what the LM profiler reads; `compression` as the short LM name
        spec = CompressionSpec.from_dict(manifest["compression"])
        legacy = {**manifest, "compression": lm_name(spec), "export": manifest["export_details"]}
        (folder / LM_MANIFEST).write_text(json.dumps(legacy, indent=2, sort_keys=True, default=str))


def _reusable(out_dir: Path, cache_key: dict[str, Any]) -> Artifact | None:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if any(manifest.get(k) != v for k, v in cache_key.items()):
        return None
    art = Artifact(out_dir, manifest)
    if not art.model_file.exists() or dir_sha256(art.model_file) != manifest.get("sha256"):
        return None
    return art


def load_artifact(path: Path) -> Artifact:
    """Open an artifact folder, or a model file, resolved from the caller's directory. A file named directly is the
    file measured: the folder's manifest describes it only when it names that very file."""
    path = resolve_out(path)
    if not path.exists():
        raise ArtifactError(f"artifact {path} does not exist", "pass a folder made by `exporters` or an .onnx/.mlpackage/.mlxfn file")
    is_folder = path.is_dir() and path.suffix != ".mlpackage"
    folder = path if is_folder else path.parent
    if is_folder and (folder / LM_MANIFEST).is_file():
        raise ArtifactError(f"{path} is a language-model artifact", "profile it with `edgezoo lm profile`")
    mf = folder / MANIFEST
    if not mf.exists():
        if is_folder:
            raise ArtifactError(f"{path} is a folder without {MANIFEST}",
                                "pass an artifact folder made by `exporters`, or the model file inside it")
        return foreign_artifact(path)
    try:
        manifest = json.loads(mf.read_text())
        model_file = manifest["model_file"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ArtifactError(f"manifest {mf} is corrupt", "re-export with `exporters`") from None
    if not is_folder and path.name != model_file:
        return foreign_artifact(path)  # another file beside an artifact: measured as itself
    return Artifact(folder, manifest)


def check_integrity(artifact: Artifact) -> None:
    """The bytes to be measured are the bytes that were exported and verified (sha256 against the manifest)."""
    expected = artifact.manifest.get("sha256")
    path = artifact.model_file
    if not path.exists():
        raise ArtifactError(f"artifact model file {path} is missing", "re-export the artifact with `exporters`")
    if expected and dir_sha256(path) != expected:
        raise ArtifactError(f"{path} does not match its manifest (sha256 differs from the exported file's)",
                            "re-export it with `exporters ... --force`, or profile the file alone as a foreign model")


def foreign_artifact(path: Path) -> Artifact:
    """An ONNX / Core ML / MLX file EdgeZoo did not produce: inputs come from the file's own declared specs."""
    suffix = path.suffix.lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        raise ArtifactError(f"{path} is not an artifact folder or a .onnx/.mlpackage/.mlxfn file",
                            "pass an artifact folder made by `exporters`, or a model file with one of those suffixes")
    manifest = {"model": path.stem, "format": fmt, "foreign": True, "model_file": path.name,
                "compression_name": "unknown", "size_bytes": path_size(path), "sha256": dir_sha256(path),
                "inputs": None}  # the runtime reads the file's declared inputs
    return Artifact(path.parent, manifest)
