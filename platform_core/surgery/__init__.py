"""Model surgery: checkpoints to HF, checkpoint selection and export, mergekit merges, SWA/EMA averaging, LoRA merge.

Each action is a task (`platform_core.tasks`) with a record, a log and a progress figure; the page and
`python -m platform_core surgery ...` call the same `start_*` functions:

- `merge.py`    mergekit merges (slerp, ties, dare_ties, dare_linear, linear), one worker process per merge
- `average.py`  streaming uniform / exponential weight averaging of HF checkpoints (safetensors in, sharded out)
- `lora.py`     merge a LoRA adapter into its base with peft
- `convert.py`  verl FSDP checkpoints to HF with `python -m verl.model_merger`, cached; checkpoint listing
- `select.py`   pick a checkpoint by validation loss, reward, last or a given step
- `export.py`   copy an HF model into the workspace models/ and register it
- `compat.py`   cheap checks on model directories (config, safetensors headers, tokenizer) before anything runs
- `output.py`   output directories inside models/: refusal rules, staging, publishing, registration
"""
