"""Run: launch `edgezoo` run / train / export / profile as background jobs and follow their logs. Papers and their
recipes come from plug-in discovery (every plug-in's `configs/`)."""

from pathlib import Path

import streamlit as st

from app.dashboard import data as D, jobs, papers as P, ui
from trainers.papers import config_dirs

FORMATS = ("torch", "onnx", "mlx", "coreml")  # exporters.FORMATS, without importing the exporters

st.title("Run")
ws = D.workspace()
root = str(ws.root)
PLUGINS = P.ordered()
OWNER = {p.configs.resolve(): p.key for p in PLUGINS}
RECIPES = {f"{OWNER.get(d.resolve(), d.parent.name)}/{path.stem}": path  # label -> recipe file
           for d in config_dirs() for path in sorted(d.glob("*.yaml"))}


def run_argv(keys: list[str], formats: list[str], threads: int) -> list[str]:
    """`edgezoo run` for these paper plug-ins (every format each declares unless some are picked)."""
    if not keys:
        return []
    return ["run", "-w", root, "--papers", ",".join(keys), *[a for f in formats for a in ("-f", f)], "-t", str(threads)]


def pipeline_args() -> list[str]:
    keys = st.multiselect("papers", [p.key for p in PLUGINS], default=[p.key for p in PLUGINS], key="run_papers",
                          help="each paper's deployable models are trained at small scale, exported and profiled")
    formats = st.multiselect("formats", FORMATS, key="run_formats", placeholder="every format each paper declares")
    threads = st.number_input("threads", 1, 64, 2, key="run_threads")
    return run_argv(keys, formats, int(threads))


def train_args() -> list[str]:
    label = st.selectbox("recipe", list(RECIPES), key="train_recipe", help="paper/recipe, from each plug-in's configs/")
    sets = st.text_input("overrides (key=value, space separated)", "", key="train_sets", placeholder="epochs=3")
    return ["train", str(RECIPES[label]), "-w", root, *[a for s in sets.split() for a in ("--set", s)]] if label else []


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


def launch(argv: list[str]) -> None:
    st.toast(f"started job {jobs.start(ws, argv).id}")


KINDS = {"pipeline (edgezoo run)": pipeline_args, "train": train_args, "export": export_args, "profile": profile_args}
kind = st.selectbox("Job", list(KINDS), key="job_kind")
argv = KINDS[kind]()  # [] while a required input is missing
st.code("edgezoo " + " ".join(argv) if argv else "pick what to run above", language="bash")
if st.button("Launch", type="primary", key="launch", disabled=not argv):
    launch(argv)

st.subheader("One paper at a time")
st.caption("`edgezoo run --papers KEY` trains that paper's deployable models at small scale (reused when unchanged), "
           "exports them in every format and compression it declares and profiles each artifact.")
for paper in PLUGINS:
    recipes = [label.split("/", 1)[1] for label in RECIPES if label.split("/", 1)[0] == paper.key]
    text, button = st.columns([4, 1])
    text.markdown(f"**{paper.title}** (`{paper.key}`)  \nrecipes: "
                  + (", ".join(f"`{r}`" for r in recipes) or "none of its own")
                  + ("" if paper.deployables else " · nothing for `edgezoo run` to deploy"))
    if button.button(f"Run {paper.key}", key=f"run_paper_{paper.key}", disabled=not paper.deployables):
        launch(run_argv([paper.key], [], 2))

ui.jobs_section(ws)
