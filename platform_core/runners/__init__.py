"""Where commands run: a detached local process, an SSH server through Fabric, or a Ray cluster."""
