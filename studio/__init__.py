"""Connector Studio's library: config model, store, secrets, and (later) the import engine.

No Streamlit import and no global state here; the studio pages, the CLI and the runner are
thin callers of these modules.
"""
