#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one run (CI has no GPU): GPU sampling through NVML against nvidia-smi, the
# evaluation generator on CUDA (and resuming it), and the configurator's memory model against measured peaks.
#
#   MODEL=dir PROMPTS=prompts.jsonl OUT=results/ bash scripts/gpu_checks.sh
#
# MODEL is any small HF causal LM directory (the demo kit's, e.g. workspace/models/demo-qwen2-tiny) and PROMPTS a
# JSONL of {"id", "prompt"}. Needs torch with CUDA, transformers and nvidia-ml-py; nothing from the network.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-checks}
MODEL=${MODEL:?MODEL=an HF model directory}
PROMPTS=${PROMPTS:?PROMPTS=a prompts.jsonl}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
status=0

echo "== GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

echo "== sampling: NVML and nvidia-smi agree"
$PY - <<'EOF' || status=1
import os
from platform_core.monitor import sampling
nvml = sampling.sample_gpus_nvml()
smi = sampling.sample_gpus_nvidia_smi()
print("nvml:", nvml)
print("nvidia-smi:", smi)
assert nvml and smi and [g["index"] for g in nvml] == [g["index"] for g in smi]
for a, b in zip(nvml, smi):
    assert a["name"] == b["name"] and abs(a["mem_total_mib"] - b["mem_total_mib"]) < 64, (a, b)
    assert 0 <= a["util"] <= 100 and 0 < a["temp_c"] < 120, a
sample = sampling.sample_system([os.getpid()])
assert sample["gpu_source"] == "nvml" and len(sample["gpus"]) == len(smi), sample
print("ok")
EOF

echo "== evaluation generation on CUDA, then a resumed run that has nothing left to do"
rm -f "$OUT/generations.jsonl"
gen() {
    $PY platform_core/evaluation/genscript.py --model "$MODEL" --prompts "$PROMPTS" --out "$OUT/generations.jsonl" \
        --max-new-tokens 32 --temperature 0 --samples 1 --batch-size 16 "$@"
}
gen 2>&1 | tee "$OUT/gen1.log" | tail -3 || status=1
gen 2>&1 | tee "$OUT/gen2.log" | tail -2 || status=1
$PY - "$OUT" "$PROMPTS" <<'EOF' || status=1
import json, sys
out, prompts = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(f"{out}/generations.jsonl")]
wanted = sum(1 for line in open(prompts) if line.strip())
log = open(f"{out}/gen1.log").read()
assert "device=cuda" in log and "dtype=bfloat16" in log, log[-500:]
assert len(rows) == wanted == len({r["id"] for r in rows}), (len(rows), wanted)
assert all(r["predictions"] and r["backend"] == "transformers" for r in rows)
assert "0 to go" in open(f"{out}/gen2.log").read(), "the second run generated again"
print(f"ok: {len(rows)} prompts generated on CUDA; the second run added none")
EOF

echo "== memory model against measured peaks"
$PY bench/bench_compute_gpu.py --json "$OUT/compute_gpu.json" || status=1
exit $status
