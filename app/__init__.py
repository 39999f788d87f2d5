"""The Streamlit side: entry point, shared widgets and the UI string table (pages live in ../pages)."""
