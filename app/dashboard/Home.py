"""EdgeZoo dashboard entry point: `edgezoo dashboard` runs `streamlit run app/dashboard/Home.py`."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # streamlit puts only this folder on sys.path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

PAGES = Path(__file__).parent / "views"  # not pages/: that name turns on the older auto-discovered navigation
st.set_page_config(page_title="EdgeZoo", page_icon="📐", layout="wide")
pages = [
    st.Page(PAGES / "papers.py", title="Papers", url_path="papers"),
    st.Page(PAGES / "tradeoffs.py", title="Trade-offs", url_path="tradeoffs"),
    st.Page(PAGES / "compare.py", title="Compare", url_path="compare"),
    st.Page(PAGES / "zoo.py", title="Zoo", url_path="zoo"),
    st.Page(PAGES / "knob.py", title="Compression knob", url_path="knob"),
    st.Page(PAGES / "lm.py", title="Language models", url_path="lm"),
    st.Page(PAGES / "devices.py", title="Devices", url_path="devices"),
    st.Page(PAGES / "run.py", title="Run", url_path="run"),
    st.Page(PAGES / "reports.py", title="Reports", url_path="reports"),
]


def _root() -> None:
    """The app's root URL opens the first page at its own URL. Streamlit serves its default page at the root only
    (its url_path then answers "Page not found"), so no listed page is the default: a hidden one redirects."""
    st.switch_page(pages[0], query_params=st.query_params.to_dict())


nav = st.navigation([st.Page(_root, title="EdgeZoo", url_path="home", default=True, visibility="hidden"), *pages])
nav.run()
