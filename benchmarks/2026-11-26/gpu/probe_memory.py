"""Peak GPU memory and seconds per step of the study's recipe at K = 62, per architecture."""
import sys, torch
from umask.config import Config
from umask.optimise import UniversalSearch
from umask.timing import timing_model
archs = sys.argv[1:]
print("| model | weights | s/step K=62 (GPU) | peak GPU memory K=62 |")
print("|---|---|---|---|")
for arch in archs:
    model, kind = timing_model(arch, device="cuda")
    cfg = Config.preset("seed", model=arch, mask_family="hstripes", k=62, steps=12, stop_at_success=False, snapshot_every=0)
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    times = [r.seconds for r in UniversalSearch(model, cfg)]
    torch.cuda.synchronize()
    per = (times[-1] - times[1]) / (len(times) - 2)
    print(f"| {arch} | {kind} | {per*1000:.1f} ms | {torch.cuda.max_memory_allocated()/2**20:.0f} MiB |", flush=True)
    del model; torch.cuda.empty_cache()
