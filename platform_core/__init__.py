"""Training Platform's library: everything the Streamlit pages and the CLI do, with no UI code.

The pages (pages/*.py) and the CLI (`python -m platform_core`) both call these modules; neither calls the other.
"""

__version__ = "0.1.0"
