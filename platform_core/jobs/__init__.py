"""Training jobs: validated specs per algorithm, engines that turn a spec into a run, and the job service."""
