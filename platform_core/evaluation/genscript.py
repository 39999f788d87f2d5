"""Generate model outputs for eval prompts. Self-contained (stdlib + torch + transformers, vLLM when present), so the
same file runs here in a subprocess and on a training server after being copied there:

    python genscript.py --model DIR --prompts prompts.jsonl --out generations.jsonl \
        --max-new-tokens 512 --temperature 0.7 --top-p 0.9 --samples 1 --seed 0 [--backend auto]

prompts.jsonl has {"id", "prompt"} per line. Each finished prompt appends one line to the output, written and
flushed as soon as its batch is done: {"id", "predictions": [...], "finish": [...], "prompt_tokens", "backend"}.
Prompts whose id is already in the output are skipped, so running it again resumes a stopped run (a torn last line
is cut off first). The backend is vLLM when it is importable and a GPU is present ("auto"), otherwise batched
transformers generation (left padding, a pad token, stopping at the end-of-sequence tokens), on GPU or CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

VLLM_CHUNK = 64


def choose_backend(requested: str, vllm_importable: bool, gpus: int) -> str:
    """Return "vllm" or "transformers": auto picks vLLM only with vLLM installed and a GPU present."""
    if requested == "transformers":
        return "transformers"
    if requested == "vllm":
        if not vllm_importable:
            raise SystemExit("backend vllm: vllm is not installed in this Python environment")
        if gpus < 1:
            raise SystemExit("backend vllm: no GPU is visible (vLLM needs CUDA here)")
        return "vllm"
    if requested != "auto":
        raise SystemExit(f"unknown backend {requested!r} (auto, vllm, transformers)")
    return "vllm" if vllm_importable and gpus > 0 else "transformers"


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA setup means no GPU for our purpose
        return 0


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} [generate] {message}\n")
    sys.stderr.flush()


def read_prompts(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def finished_ids(path: str) -> set:
    """Return the ids already in the output, cutting off a torn last line first."""
    if not os.path.exists(path):
        return set()
    with open(path, "rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            handle.truncate(end)
            data = data[:end]
    done = set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            done.add(json.loads(line)["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return done


def render(tokenizer, prompt: str, chat_template: str) -> tuple[str, bool]:
    """Return (model input text, whether the chat template was applied)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat_template == "on" and not has_template:
        raise SystemExit("chat template: the tokenizer has none (use --chat-template auto or off)")
    if chat_template != "off" and has_template:
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), True
    return prompt, False


def apply_stops(text: str, stops: list[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Writer:
    def __init__(self, path: str, backend: str):
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        self.backend = backend
        self.count = 0

    def write(self, item_id, predictions, finish, prompt_tokens) -> None:
        record = {
            "id": item_id,
            "predictions": predictions,
            "finish": finish,
            "prompt_tokens": prompt_tokens,
            "backend": self.backend,
        }
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1

    def flush(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())


def generate_transformers(args, todo: list[dict], writer: Writer) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if not cuda:
        torch.set_num_threads(max(1, args.threads or (os.cpu_count() or 1)))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device).eval()
    eos = model.generation_config.eos_token_id
    eos_ids = sorted(
        {*(eos if isinstance(eos, list) else [eos] if eos is not None else []), tokenizer.eos_token_id} - {None}
    )
    context = getattr(model.config, "max_position_embeddings", None)
    log(f"backend=transformers device={device} dtype={str(dtype).replace('torch.', '')} items={len(todo)}")
    rendered = [(item, *render(tokenizer, item["prompt"], args.chat_template)) for item in todo]
    rendered.sort(key=lambda r: len(r[1]))  # similar lengths together: less padding
    sample = args.temperature > 0
    for start in range(0, len(rendered), args.batch_size):
        batch = rendered[start : start + args.batch_size]
        texts = [text for _item, text, _templated in batch]
        limit = context - 1 if context else None
        encoded = tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=not batch[0][2],
            truncation=limit is not None,
            max_length=limit,
        ).to(device)
        prompt_len = encoded["input_ids"].shape[1]
        new_tokens = args.max_new_tokens if not context else max(1, min(args.max_new_tokens, context - prompt_len))
        options = {
            "max_new_tokens": new_tokens,
            "do_sample": sample,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": eos_ids or None,
            "num_return_sequences": args.samples if sample else 1,
        }
        if sample:
            options.update(temperature=args.temperature, top_p=args.top_p)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            output = model.generate(**encoded, **options)
        generated = output[:, prompt_len:]
        decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
        per = args.samples if sample else 1
        for number, (item, _text, _templated) in enumerate(batch):
            predictions, finish = [], []
            for row in range(number * per, (number + 1) * per):
                text, stopped = apply_stops(decoded[row], args.stop)
                hit_eos = any(int(t) in eos_ids for t in generated[row].tolist())
                predictions.append(text.strip())
                finish.append("stop" if stopped or hit_eos else "length")
            if not sample and args.samples > 1:
                predictions, finish = predictions * args.samples, finish * args.samples
            tokens = int(encoded["attention_mask"][number].sum())
            writer.write(item["id"], predictions, finish, tokens)
        writer.flush()
        log(f"{writer.count}/{len(todo)} done")


def generate_vllm(args, todo: list[dict], writer: Writer, gpus: int) -> None:
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=args.model,
        seed=args.seed,
        dtype="auto",
        tensor_parallel_size=max(1, args.tensor_parallel or 1),
        gpu_memory_utilization=args.gpu_memory_utilization,
    )
    tokenizer = llm.get_tokenizer()
    params = SamplingParams(
        n=args.samples,
        temperature=args.temperature,
        top_p=args.top_p if args.temperature > 0 else 1.0,
        max_tokens=args.max_new_tokens,  # vLLM's default is 16: always set it
        seed=args.seed,
        stop=args.stop or None,
    )
    log(f"backend=vllm gpus={gpus} items={len(todo)}")
    for start in range(0, len(todo), VLLM_CHUNK):
        chunk = todo[start : start + VLLM_CHUNK]
        texts = [render(tokenizer, item["prompt"], args.chat_template)[0] for item in chunk]
        outputs = llm.generate(texts, params, use_tqdm=False)
        for position, output in enumerate(outputs):
            item = chunk[position]
            predictions = [o.text.strip() for o in output.outputs]
            finish = ["stop" if o.finish_reason == "stop" else "length" for o in output.outputs]
            writer.write(item["id"], predictions, finish, len(output.prompt_token_ids or []))
        writer.flush()
        log(f"{writer.count}/{len(todo)} done")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="generate eval outputs (resumable)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--chat-template", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--stop", action="append", default=[])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--tensor-parallel", type=int, default=1)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.model = os.path.expanduser(args.model)  # a remote path may be given as ~/models/x, quoted
    prompts = read_prompts(args.prompts)
    done = finished_ids(args.out)
    todo = [p for p in prompts if p["id"] not in done]
    log(f"{len(prompts)} prompts, {len(done)} already generated, {len(todo)} to go")
    if not todo:
        return 0
    gpus = gpu_count()
    backend = choose_backend(args.backend, vllm_importable(), gpus)
    import random

    random.seed(args.seed)
    try:
        import torch

        torch.manual_seed(args.seed)
    except ImportError:
        pass
    writer = Writer(args.out, backend)
    if backend == "vllm":
        generate_vllm(args, todo, writer, gpus)
    else:
        generate_transformers(args, todo, writer)
    log(f"finished: {writer.count} generated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
