"""Peak memory of dataset preparation: one dataset at a time vs the largest alone vs all loaded first.

Generates three JSONL corpora (about 30, 20 and 10 MB of text) and a byte-level BPE
tokenizer trained on a sample of them, then measures each scenario in a fresh
subprocess (peak RSS = ``ru_maxrss`` of that process):

  a_largest_alone   prepare_dataset on the 30 MB corpus only
  b_prepare_all     prepare_all on the three corpora (one at a time, memory-mapped results)
  c_all_in_memory   baseline: read all three into Python lists first, then tokenize and
                    pack each in memory (what a script without streaming does)

Prints JSON with the peaks, the peaks above the process's idle baseline (imports and
tokenizer loaded), and the ratios. Target: b / a <= 1.2.

    .venv/bin/python benchmarks/prep_memory.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES_MB = {"big": 30, "mid": 20, "small": 10}


def rss_peak_mib() -> float:
    from tui_trainer.cli.prepare import peak_rss_bytes

    return peak_rss_bytes() / 2**20


def generate(data_dir: Path, scale: float) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=int(n))) for n in rng.integers(2, 10, size=8000)]
    weights = 1.0 / np.arange(1, len(words) + 1)  # Zipf-like word frequencies, as in real text
    weights /= weights.sum()
    doc_lengths = (40, 120, 400, 200, 80)  # words per document, cycled
    for name, mb in SIZES_MB.items():
        target = int(mb * scale * 2**20)
        written = 0
        with (data_dir / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            while written < target:
                chunk = [words[i] for i in rng.choice(len(words), size=200_000, p=weights)]
                pos, k, lines = 0, 0, []
                while pos < len(chunk):
                    doc = chunk[pos : pos + doc_lengths[k % len(doc_lengths)]]
                    pos, k = pos + len(doc), k + 1
                    text = ". ".join(" ".join(doc[i : i + 12]) for i in range(0, len(doc), 12)) + "."
                    lines.append(json.dumps({"text": text}) + "\n")
                block = "".join(lines)
                fh.write(block)
                written += len(block)


def build_tokenizer(data_dir: Path, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.unit.data_fixtures import build_tiny_tokenizer

    sample = []
    with (data_dir / "small.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= 2000:
                break
            sample.append(json.loads(line)["text"])
    build_tiny_tokenizer(sample, vocab_size=8000).save_pretrained(out)


def worker(scenario: str, data_dir: Path, tok_dir: Path, work: Path) -> dict:
    from transformers import AutoTokenizer

    from tui_trainer.config.schema import DataSection, config_from_dict
    from tui_trainer.data import packing  # noqa: F401  (imports counted in the idle baseline)
    from tui_trainer.data.prep.prepare import prepare_all, prepare_dataset
    from tui_trainer.data.prep.tokenize import FEATURES, BatchTokenizer  # noqa: F401

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    idle = rss_peak_mib()
    start = time.perf_counter()
    datasets_cfg = [{"name": n, "path": str(data_dir / f"{n}.jsonl")} for n in SIZES_MB]
    data = {"max_seq_len": 1024, "packing": True, "eval_fraction": 0.01}
    out: dict = {}
    if scenario == "a_largest_alone":
        p = prepare_dataset(config_from_dict({"data": {**data, "datasets": datasets_cfg[:1]}}).data.datasets[0],
                            DataSection(**data), tokenizer, seed=0, cache_root=work)
        out["tokens"] = p.stats.tokens
    elif scenario == "b_prepare_all":
        cfg = config_from_dict({"data": {**data, "datasets": datasets_cfg}})
        prepared = prepare_all(cfg, tokenizer, cache_root=work)
        out["tokens"] = sum(p.stats.tokens for p in prepared)
    else:
        out["tokens"] = _all_in_memory(data_dir, tokenizer, data["max_seq_len"])
    out.update(peak_mib=round(rss_peak_mib(), 1), idle_mib=round(idle, 1), seconds=round(time.perf_counter() - start, 1))
    return out


def _all_in_memory(data_dir: Path, tokenizer, max_seq_len: int) -> int:
    """The baseline: every corpus read into memory first, then tokenized and packed in memory."""
    import datasets
    import numpy as np

    from tui_trainer.data.prep.packing import pack
    from tui_trainer.data.prep.tokenize import FEATURES

    texts = {}
    for name in SIZES_MB:
        with (data_dir / f"{name}.jsonl").open(encoding="utf-8") as fh:
            texts[name] = [json.loads(line)["text"] for line in fh]
    datasets.disable_progress_bars()
    eos = tokenizer.eos_token_id
    rows = {}
    for name, docs in texts.items():
        ds = datasets.Dataset.from_dict({"text": docs})

        def tok(batch):
            ids = [i + [eos] for i in tokenizer(batch["text"], add_special_tokens=False)["input_ids"]]
            return {"input_ids": ids, "labels": ids}

        tokenized = ds.map(tok, batched=True, remove_columns=["text"], keep_in_memory=True, features=FEATURES)
        rows[name] = pack(zip(tokenized["input_ids"], tokenized["labels"]), max_seq_len)
    return int(sum(np.sum([len(r[0]) for r in v]) for v in rows.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the corpus sizes (default 1.0)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tok", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.tok, args.work)))
        return

    with tempfile.TemporaryDirectory(prefix="prep-memory-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        generate(tmp_path, args.scale)
        build_tokenizer(tmp_path, tmp_path / "tok")
        setup_s = time.perf_counter() - t0
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        results = {}
        for scenario in ("a_largest_alone", "b_prepare_all", "c_all_in_memory"):
            work = tmp_path / f"cache-{scenario}"
            cmd = [sys.executable, __file__, "--worker", scenario, "--data", tmp, "--tok", str(tmp_path / "tok"),
                   "--work", str(work)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"{scenario} failed:\n{proc.stderr}")
            results[scenario] = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b, c = (results[k] for k in ("a_largest_alone", "b_prepare_all", "c_all_in_memory"))

    def above_idle(r: dict) -> float:
        return r["peak_mib"] - r["idle_mib"]

    report = {
        "corpora_mb": {k: round(v * args.scale, 1) for k, v in SIZES_MB.items()},
        "setup_seconds": round(setup_s, 1),
        "scenarios": results,
        "ratio_b_over_a_peak": round(b["peak_mib"] / a["peak_mib"], 3),
        "ratio_b_over_a_above_idle": round(above_idle(b) / above_idle(a), 3),
        "ratio_c_over_b_peak": round(c["peak_mib"] / b["peak_mib"], 3),
        "ratio_c_over_b_above_idle": round(above_idle(c) / above_idle(b), 3),
        "target": "ratio_b_over_a_peak <= 1.2",
        "meets_target": b["peak_mib"] / a["peak_mib"] <= 1.2,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
