"""Copy the key screenshots of the end-to-end run (test-artifacts/e2e/<lang>/) into assets/tour/ for the README:
cropped to the top of the page, scaled to 1000 px wide, reduced to a 256-colour palette.

    python scripts/tour_images.py [--lang en]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# step name in the e2e run -> (file in assets/tour, height kept in screenshot pixels)
KEY_STEPS = {
    "dataset-token-lengths": ("1-dataset-audit.png", 1400),
    "configurator-recommendation": ("2-configurator.png", 1500),
    "sft-job-completed": ("3-job-charts.png", 1400),
    "sft-job-gradients": ("4-job-gradients.png", 1000),
    "demo-sft-checkpoint-picked": ("5-checkpoint-pick.png", 1500),
    "sft-comparison": ("6-evaluation-compare.png", 1500),
    "grpo-rollouts": ("7-grpo-rollouts.png", 1100),
}
WIDTH = 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    source = REPO / "test-artifacts" / "e2e" / args.lang
    out = REPO / "assets" / "tour"
    out.mkdir(parents=True, exist_ok=True)
    shots = {re.sub(r"^\d+-", "", p.stem): p for p in sorted(source.glob("*.png"))}
    missing = [step for step in KEY_STEPS if step not in shots]
    if missing:
        raise SystemExit(f"{source}: no screenshot for {', '.join(missing)}; run the e2e test first")
    for step, (name, keep) in KEY_STEPS.items():
        image = Image.open(shots[step]).convert("RGB")
        image = image.crop((0, 0, image.width, min(keep, image.height)))
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out / name, optimize=True)
        print(f"{out / name}: {(out / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
