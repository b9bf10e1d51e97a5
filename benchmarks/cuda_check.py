"""The prepared GPU check: run it the first time a machine with CUDA is at hand.

    python benchmarks/cuda_check.py            # about 2-4 minutes on one GPU
    python benchmarks/cuda_check.py --skip-notebook
    python benchmarks/cuda_check.py --device cpu   # a dry run: the CPU stands in for the GPU

On a machine without CUDA it says so and exits 0. With CUDA it checks, printing one line each:

1. ``select_device("auto")`` picks CUDA, and a tensor made there is on it;
2. the ``mosi`` preset's untrained model gives the same predictions and loss terms on CUDA as on
   the CPU for one batch (same weights, evaluation mode, fp32; TF32 is switched off for it);
3. one epoch of the ``mosi`` preset on a small known-factor benchmark, fp32 on CUDA: every loss
   term and test metric finite, and the test MAE within 25 % of a CPU run of the same seed
   (dropout draws its masks differently on the two devices, so the runs are close, not equal);
4. the same epoch with mixed precision (float16 autocast and a gradient scaler): finite, the
   model's parameters stay fp32, and the test MAE within 25 % of the fp32 CUDA run;
5. notebook 06 executed on CUDA through nbval, in FAST mode (it trains on ``select_device("auto")``),
   with the device it printed read back from the executed cells.

The last line is ``N passed, N failed``; the exit status is 1 when any check failed.
``--device cpu`` runs the same checks with the CPU in the GPU's place (mixed precision is then
off, as the trainer uses it on CUDA only): a check of this script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fdmer_lite.config import get_preset  # noqa: E402
from fdmer_lite.data.base import make_loader  # noqa: E402
from fdmer_lite.data.synthetic import make_benchmark  # noqa: E402
from fdmer_lite.losses import fdmer_objective  # noqa: E402
from fdmer_lite.model import build_model  # noqa: E402
from fdmer_lite.train import Trainer, select_device  # noqa: E402

RESULTS: list[tuple[bool, str]] = []


def check(ok: bool, what: str) -> bool:
    RESULTS.append((bool(ok), what))
    print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)
    return bool(ok)


def guarded(name: str, fn) -> None:
    """Run one check; an exception is a failed check with its message, never a crash."""
    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - report every failure as a line
        check(False, f"{name}: {type(exc).__name__}: {exc}")
    print(f"      ({name}: {time.perf_counter() - start:.1f} s)", flush=True)


def small_benchmark():
    return make_benchmark("emotion", n_train=512, n_valid=128, n_test=128, seq_len=50, seed=0)


def one_epoch(data, device: str, amp: bool, seed: int = 0) -> dict:
    cfg = get_preset("mosi").replace(train={"epochs": 1, "device": device, "amp": amp, "seed": seed})
    trainer = Trainer(cfg, data, progress=False)
    start = time.perf_counter()
    history = trainer.fit()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    test = trainer.evaluate("test")
    dtypes = {p.dtype for p in trainer.model.parameters()}
    return {"train": history[-1]["train"], "valid": history[-1]["valid"], "metrics": test["metrics"],
            "losses": test["losses"], "seconds": seconds, "device": str(trainer.device),
            "param_dtypes": dtypes, "amp": trainer.use_amp}


def all_finite(values: dict) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-notebook", action="store_true", help="leave out the nbval run of notebook 06")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="the device under test (cpu: a dry run of this script)")
    args = ap.parse_args(argv)
    dev = args.device

    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, available: {torch.cuda.is_available()}")
    if dev == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (run this on a machine with a GPU)")
        return 0
    if dev == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)}; {torch.cuda.device_count()} device(s)")
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    data = small_benchmark()
    runs: dict[str, dict] = {}

    def device_choice():
        chosen = select_device("auto" if dev == "cuda" else dev)
        x = torch.ones(2, device=chosen)
        check(chosen.type == dev and x.device.type == dev,
              f"select_device('auto') -> {chosen}; a tensor lands on {x.device}")

    def same_forward():
        cfg = get_preset("mosi")
        torch.manual_seed(0)
        model = build_model(cfg, data.widths, data.output_dim, max_len=max(data.seq_lengths.values())).eval()
        batch = next(iter(make_loader(data, "train", 32)))
        with torch.no_grad():
            out_cpu = model(batch.features, batch.masks)
            terms_cpu = fdmer_objective(out_cpu, batch.label, cfg.loss)
            tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            try:
                model.to(dev)
                gpu = batch.to(torch.device(dev))
                out_gpu = model(gpu.features, gpu.masks)
                terms_gpu = fdmer_objective(out_gpu, gpu.label, cfg.loss)
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        diff = (out_gpu.prediction.cpu() - out_cpu.prediction).abs().max().item()
        term_diff = max(abs(terms_gpu[k].item() - terms_cpu[k].item()) / max(1e-6, abs(terms_cpu[k].item()))
                        for k in terms_cpu)
        check(diff < 1e-3 and term_diff < 1e-3,
              f"mosi preset, one batch, eval mode: {dev} vs CPU predictions differ by at most {diff:.2e}, "
              f"loss terms by {term_diff:.2e} relative (limit 1e-3)")

    def epoch(name: str, device: str, amp: bool):
        def run():
            r = runs[name] = one_epoch(data, device, amp)
            finite = all_finite(r["train"]) and all_finite(r["valid"]) and all_finite(r["metrics"])
            check(finite and r["device"].startswith(device),
                  f"one epoch of mosi on {r['device']} (amp={r['amp']}) in {r['seconds']:.1f} s: "
                  f"train loss {r['train']['all']:.4f}, test MAE {r['metrics']['mae']:.4f}, every value finite: {finite}")
        return run

    def compare(a: str, b: str, what: str):
        def run():
            if a not in runs or b not in runs:
                check(False, f"{what}: a run it needs failed")
                return
            ma, mb = runs[a]["metrics"]["mae"], runs[b]["metrics"]["mae"]
            rel = abs(ma - mb) / mb
            check(rel < 0.25, f"{what}: test MAE {ma:.4f} against {mb:.4f} ({rel:.1%} apart, limit 25 %)")
        return run

    def amp_keeps_fp32_weights():
        r = runs.get("cuda_amp")
        check(r is not None and r["param_dtypes"] == {torch.float32} and r["amp"] == (dev == "cuda"),
              f"mixed precision used ({r and r['amp']}) and the parameters stay {r and sorted(map(str, r['param_dtypes']))}")

    def notebook():
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "FDMER_LITE_FAST": "1", "FDMER_LITE_RUNS_DIR": str(Path(tmp) / "runs")}
            out_nb = Path(tmp) / "06_executed.ipynb"
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                   "--override-ini", "addopts=", str(ROOT / "notebooks" / "06_training.ipynb")]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
            check(proc.returncode == 0, f"notebook 06 through nbval on this machine: exit {proc.returncode} "
                                        f"in {time.perf_counter() - start:.0f} s ({tail[0]})")
            exe = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                                  "--output", str(out_nb), str(ROOT / "notebooks" / "06_training.ipynb")],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
            text = out_nb.read_text(encoding="utf-8") if out_nb.is_file() else ""
            check(exe.returncode == 0 and f"device: {dev}" in text,
                  f"notebook 06 executed: exit {exe.returncode}; it trained on {dev}: {f'device: {dev}' in text}")

    guarded("device", device_choice)
    guarded("same forward", same_forward)
    guarded("cpu epoch", epoch("cpu", "cpu", False))
    guarded("cuda fp32 epoch", epoch("cuda_fp32", dev, False))
    guarded("cuda vs cpu", compare("cuda_fp32", "cpu", f"{dev} fp32 against the CPU, same seed"))
    guarded("cuda amp epoch", epoch("cuda_amp", dev, True))
    guarded("amp weights", amp_keeps_fp32_weights)
    guarded("amp vs fp32", compare("cuda_amp", "cuda_fp32", f"{dev} mixed precision against {dev} fp32"))
    if not args.skip_notebook:
        guarded("notebook 06", notebook)

    passed = sum(ok for ok, _ in RESULTS)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
