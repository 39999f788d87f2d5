"""Code that runs inside training processes (locally or copied to a GPU server).

Every module here imports only the standard library and what a training environment has (torch, transformers,
verl or trl), never platform_core, so it can be shipped as a single file next to a remote run.
"""
