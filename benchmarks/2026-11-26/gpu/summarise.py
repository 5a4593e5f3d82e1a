import json, sys
from pathlib import Path
print("| run | K | family | recipe | steps | seconds | success |")
print("|---|---|---|---|---|---|---|")
for f in sorted(Path(sys.argv[1]).glob("*/result.json")):
    r = json.loads(f.read_text())
    print(f"| {f.parent.name} | {r['k']} | {r['mask_family']} | {r['config'].get('optimizer')} lr {r['config'].get('lr')} | {r['steps']} | {r['seconds']:.1f} | {r['success_rate']:.2f} |")
