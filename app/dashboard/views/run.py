"""Run: launch `edgezoo` train / export / profile / run as background jobs and follow their logs."""

from pathlib import Path

import streamlit as st

from app.dashboard import data as D, jobs, ui

FORMATS = ("torch", "onnx", "mlx", "coreml")  # exporters.FORMATS, without importing the exporters
RECIPES = sorted(p.stem for p in (jobs.ROOT / "trainers" / "configs").glob("*.yaml"))

st.title("Run")
ws = D.workspace()
root = str(ws.root)


def pipeline_args() -> list[str]:
    recipes = st.multiselect("recipes", RECIPES, default=RECIPES, key="run_recipes")
    formats = st.multiselect("formats", FORMATS, default=["torch", "onnx"], key="run_formats")
    threads = st.number_input("threads", 1, 64, 2, key="run_threads")
    return ["run", "-w", root, *[a for r in recipes for a in ("-r", r)], *[a for f in formats for a in ("-f", f)],
            "-t", str(threads)]


def train_args() -> list[str]:
    recipe = st.selectbox("recipe", RECIPES, key="train_recipe")
    sets = st.text_input("overrides (key=value, space separated)", "", key="train_sets", placeholder="epochs=3")
    return ["train", recipe, "-w", root, *[a for s in sets.split() for a in ("--set", s)]]


def export_args() -> list[str]:
    ckpts = sorted(str(p.parent) for p in ws.zoo.glob("*/card.json")) if ws.zoo.exists() else []
    ckpt = st.selectbox("checkpoint", ckpts, key="export_ckpt", placeholder="no checkpoint in the zoo yet")
    fmt = st.selectbox("format", FORMATS, index=1, key="export_fmt")
    spec = st.text_input("compression", "none", key="export_spec", help="none, fp16, int8, int4, prune50, palette4 ...")
    return ["export", fmt, ckpt, "-c", spec, "-w", root] if ckpt else []


def profile_args() -> list[str]:
    found = sorted(str(p.parent) for p in ws.artifacts.glob("*/*/manifest.json")) if ws.artifacts.exists() else []
    picked = st.multiselect("artifacts", found, key="profile_artifacts",
                            format_func=lambda p: str(Path(p).relative_to(ws.artifacts)))
    threads = st.number_input("threads", 1, 64, 2, key="profile_threads")
    return ["profile", *picked, "-w", root, "-t", str(threads)] if picked else []


KINDS = {"pipeline (edgezoo run)": pipeline_args, "train": train_args, "export": export_args, "profile": profile_args}
kind = st.selectbox("Job", list(KINDS), key="job_kind")
argv = KINDS[kind]()  # [] while a required input is missing
st.code("edgezoo " + " ".join(argv) if argv else "pick what to run above", language="bash")
if st.button("Launch", type="primary", key="launch", disabled=not argv):
    job = jobs.start(ws, argv)
    st.toast(f"started job {job.id}")


ui.jobs_section(ws)
