"""The Streamlit dashboard: light imports only (pandas, plotly, streamlit, profiles.store); heavy work runs as jobs."""
