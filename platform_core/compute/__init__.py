"""Compute configurator: model architectures, GPU specs, the memory model, the recommender and the time estimate.

`configure(request)` (in `platform_core.compute.recommend`) is the one entry point the page and the CLI call.
"""
