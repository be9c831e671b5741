"""Run: launch every `edgezoo` job (run, train, export, profile, lm profile, specdec bench, reproduce, report) in the
background and follow its progress and log. The page only builds the argv: the CLI validates it, and a failed job
shows the CLI's error. Every choice comes from discovery, the registries or the workspace's folders (app/dashboard/
choices.py)."""

from pathlib import Path

import streamlit as st

from app import cli, cli_lm, cli_specdec
from app.dashboard import choices as C, data as D, devices, jobs, papers as P, ui
from trainers.papers import config_dirs

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


def threads_input(key: str, command, param: str = "threads") -> int:
    """A threads field with the command's own default and bound."""
    return int(st.number_input("threads", 1, C.cli_max(command, param, 64), C.cli_default(command, param), key=key))


def fleet_args(key: str) -> list[str]:
    """`--on NAMES --address HEAD` for the fleet devices picked (none picked: this machine measures)."""
    address = devices.fleet_head(st.session_state)
    if not address:
        return []
    found, why = devices.fleet_devices(address)
    picked = st.multiselect("on fleet devices (none: this machine)", [d["name"] for d in found], key=key,
                            help=why or f"devices connected to {address} now (Devices page)")
    return ["--on", ",".join(picked), "--address", address] if picked else []


def pipeline_args() -> list[str]:
    keys = st.multiselect("papers", [p.key for p in PLUGINS], default=[p.key for p in PLUGINS], key="run_papers",
                          help="each paper's deployable models are trained at small scale, exported and profiled")
    formats = st.multiselect("formats", C.FORMATS, key="run_formats", placeholder="every format each paper declares")
    argv = run_argv(keys, formats, threads_input("run_threads", cli.run))
    return argv + fleet_args("run_on") if argv else []


def train_args() -> list[str]:
    label = st.selectbox("recipe", list(RECIPES), key="train_recipe", help="paper/recipe, from each plug-in's configs/")
    sets = st.text_input("overrides (key=value, space separated)", "", key="train_sets", placeholder="epochs=3")
    return ["train", str(RECIPES[label]), "-w", root, *[a for s in sets.split() for a in ("--set", s)]] if label else []


def checkpoint_input(found: dict[str, str], key: str) -> str | None:
    return st.selectbox("checkpoint", list(found), key=key, placeholder="no such checkpoint in the zoo yet",
                        format_func=lambda p: f"{Path(p).name} ({found[p]})")


def export_args() -> list[str]:
    found = C.checkpoints(ws)
    ckpt = checkpoint_input(found, "export_ckpt")
    fmt = st.selectbox("format", C.FORMATS, key="export_fmt")
    if not ckpt:
        return []
    specs = C.spec_choices(fmt, found[ckpt])
    spec = st.selectbox("compression", specs, key="export_spec",
                        help=f"what {fmt} supports for a {found[ckpt]} checkpoint (exporters/formats.py)")
    custom = st.text_input("or a spec with options", "", key="export_custom", placeholder="e.g. prune:sparsity=0.3")
    return ["export", fmt, ckpt, "-c", custom.strip() or spec, "-w", root]


def artifact_label(path: str) -> str:
    return str(Path(path).relative_to(ws.artifacts))


def profile_args() -> list[str]:
    picked = st.multiselect("artifacts", C.artifact_dirs(ws, lm=False), key="profile_artifacts",
                            format_func=artifact_label)
    threads = threads_input("profile_threads", cli.profile)
    return ["profile", *picked, "-w", root, "-t", str(threads), *fleet_args("profile_on")] if picked else []


def lm_profile_args() -> list[str]:
    artifact = st.selectbox("language-model artifact", C.artifact_dirs(ws, lm=True), key="lm_profile_artifact",
                            format_func=artifact_label, placeholder="no LM artifact yet (lm_manifest.json)")
    threads = threads_input("lm_profile_threads", cli_lm.profile)
    return ["lm", "profile", artifact, "-w", root, "-t", str(threads)] if artifact else []


def specdec_args() -> list[str]:
    bench = cli_specdec.bench
    found = C.checkpoints(ws, C.LM)
    ckpt = checkpoint_input(found, "specdec_ckpt")
    context = C.max_context(C.cards(ws).get(ckpt or "", {}))
    within = f" (at most {context:,}, the model's context)" if context else ""
    gammas = st.text_input("gammas (draft lengths >= 1, at most the new tokens)", C.cli_default(bench, "gammas"),
                           key="specdec_gammas")
    contexts = st.text_input(f"contexts (prompt bytes{within})", C.cli_default(bench, "contexts"),
                             key="specdec_contexts")
    tokens = st.number_input(f"new tokens per prompt{within}", 1, context, C.cli_default(bench, "tokens"),
                             key="specdec_tokens")
    prompts = st.number_input("prompts per context", 1, None, C.cli_default(bench, "prompts"), key="specdec_prompts")
    modes = st.text_input("modes (greedy and/or sample)", C.cli_default(bench, "modes"), key="specdec_modes")
    threads = threads_input("specdec_threads", bench)
    return ["specdec", "bench", ckpt, "--gammas", gammas.replace(" ", ""), "--contexts", contexts.replace(" ", ""),
            "--tokens", str(tokens), "--prompts", str(prompts), "--modes", modes.replace(" ", ""), "-t", str(threads),
            "-w", root] if ckpt else []


def reproduce_args() -> list[str]:
    found = C.claims()
    key = st.selectbox("paper", list(found), key="reproduce_paper", format_func=lambda k: f"{k} — {found[k]}")
    quick = st.checkbox("quick (a smaller experiment: a smoke test, not the full check)", key="reproduce_quick")
    seeds = st.text_input("seeds (comma-separated, default: the card's)", "", key="reproduce_seeds")
    extra = [*(["--quick"] if quick else []), *(["--seeds", seeds.replace(" ", "")] if seeds.strip() else [])]
    return ["reproduce", key, "-w", root, *extra] if key else []


def report_args() -> list[str]:
    return ui.report_argv(ws, key="run_report_device")


def launch(argv: list[str]) -> None:
    st.toast(f"started job {jobs.start(ws, argv).id}")


KINDS = {"pipeline (edgezoo run)": pipeline_args, "train": train_args, "export": export_args, "profile": profile_args,
         "lm profile": lm_profile_args, "specdec bench": specdec_args, "reproduce": reproduce_args,
         "report": report_args}
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
        launch(run_argv([paper.key], [], C.cli_default(cli.run, "threads")))

ui.jobs_section(ws)
