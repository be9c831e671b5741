"""Zoo: every trained checkpoint with its paper card, metrics, training curves and claim-check status."""

import streamlit as st

from app.dashboard import charts, data as D, ui, zoo
from trainers.papers import papers

st.title("Zoo")
ws = D.workspace()
entries = zoo.cards(ws)
if not entries:
    st.info(f"No checkpoints in `{ws.zoo}` yet. Train one with `edgezoo train RECIPE -w {ws.root}` or on the Run page.")
    st.stop()

all_claims = zoo.claims(ws)
plugins = papers()
if all_claims is not None and not all_claims.empty:
    with st.expander(f"all claim checks ({len(all_claims)})"):
        st.dataframe(zoo.shown(all_claims), hide_index=True, width="stretch")

for path, card in entries:
    st.header(path.name)
    if isinstance(card, str):
        st.error(f"{path}: {card}")
        continue
    paper, metrics = card.get("paper") or {}, card.get("metrics") or {}
    st.markdown(f"**{card.get('model')}** — {paper.get('title', 'no paper card')}"
                + (f" ([arXiv:{paper['arxiv']}](https://arxiv.org/abs/{paper['arxiv']}))" if paper.get("arxiv") else "")
                + (f" · [code]({paper['code']})" if paper.get("code") else ""))
    cols = st.columns(4)
    cols[0].metric("test accuracy", f"{metrics['test_accuracy']:.3f}" if "test_accuracy" in metrics else "—")
    cols[1].metric("val accuracy", f"{metrics['val_accuracy']:.3f}" if "val_accuracy" in metrics else "—")
    cols[2].metric("best epoch", metrics.get("best_epoch", "—"))
    cols[3].metric("train seconds", f"{metrics['train_seconds']:.1f}" if "train_seconds" in metrics else "—")
    if not metrics:
        st.warning("No final metrics in the card: training did not finish (or is still running).")
    if curve := zoo.history(path, card):
        st.plotly_chart(charts.history(curve), key=f"history_{path.name}")
    keys = zoo.paper_keys(path, card, plugins)
    claims = zoo.claim_rows(all_claims, keys)
    if claims is None or claims.empty:
        how = ", ".join(f"`edgezoo reproduce {k}`" for k in sorted(keys)) or "`edgezoo reproduce PAPER`"
        st.info(f"Claim check: no claim check run for this paper ({how} runs one).")
    else:
        for key, rows in claims.groupby("paper", sort=True):
            latest = rows.iloc[0]
            ui.show_verdict(latest["verdict"], f"{key}, {latest['created']}: {latest['claim']}. {latest['reason']}")
        st.dataframe(zoo.shown(claims), hide_index=True, width="stretch")
    with st.expander("card details (recipe, args, data hash)"):
        st.json({k: v for k, v in card.items() if k != "history"}, expanded=1)
