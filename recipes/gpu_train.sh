#!/usr/bin/env bash
# Stages trained side by side on one GPU for a fixed time, under bf16 autocast, from tokenised
# shards carried to the machine; models, metrics and curves land in OUT.
#
#   bash recipes/gpu_train.sh TOKENS OUT MINUTES CONFIG...
#
# Each CONFIG (a TrainConfig JSON, e.g. one AR and one NAR) trains in OUT/NAME, NAME being the
# config's file name. A run's learning rate decays to zero at its last step, so the number of
# steps is fitted to the time: a short probe of every config, side by side, measures steps per
# second, and the run proper takes as many steps as fit into MINUTES (its time limit stays as a
# backstop). TOKENS holds valid/ and one or more train* folders (train/, train_human/, ...: read
# as one corpus) as written by `valle data tokenize` (tens of MB for hours of speech). Training needs only torch, safetensors and tqdm, so it runs from the source
# tree with whatever PyTorch the machine has. What comes back from a lent machine is limited
# (files of 16 MiB), so the script ends by packing the trained stages (their EMA where the config keeps one) in float16 with their
# metrics and logs into OUT/trained.tar.part-*; here
#   cat OUT/trained.tar.part-* | tar x -C RUN && valle export RUN/AR_NAME/half RUN/NAR_NAME/half MODEL --half
# joins them for synthesis (a frame stage alone: `valle export RUN/FRAMES_NAME/half MODEL --half`; it trains
# on aligned folders, so TOKENS then holds their alignments.safetensors too, and pitch.safetensors for a
# stage told the pitch).
set -euo pipefail
tokens=${1:?tokens folder} out=${2:?output folder} minutes=${3:?minutes}
shift 3
[ $# -gt 0 ] || { echo "name at least one training config" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
probe_minutes=${PROBE_MINUTES:-0.75}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
name() { basename "$1" .json; }

side_by_side() {  # run "$@" once per config (the config replaces {}), wait for all, fail if one failed
    local status=0 config
    for config in "${configs[@]}"; do "${@//\{\}/$config}" & done
    for config in "${configs[@]}"; do wait -n || status=$?; done
    return $status
}
configs=("$@")

probe() {
    python3 -m valle.train --config "$1" --data "$tokens"/train* --out "$out/probe/$(name "$1")" --steps 1000000 \
        --time-limit "$probe_minutes" > "$out/probe/$(name "$1").log" 2>&1
}
mkdir -p "$out/probe"
[ "$probe_minutes" = 0 ] || side_by_side probe {}  # 0: the configs' own steps, rates known from an earlier probe

fit() {  # the config with `steps` fitted to the time and four held-out scorings
    python3 - "$1" "$out/probe/$(name "$1")/metrics.jsonl" "$minutes" "$out/$(name "$1").json" <<'PY'
import json, os, sys
config, probe, minutes, fitted = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
values = json.load(open(config))
if os.path.exists(probe):
    records = [json.loads(line) for line in open(probe)]
    first, last = records[0] if len(records) > 1 else {"step": 0, "hours": 0.0}, records[-1]  # the first steps warm up
    per_second = (last["step"] - first["step"]) / ((last["hours"] - first["hours"]) * 3600)
    values["steps"] = int(per_second * minutes * 60 * 0.85)  # the rest: start-up, held-out scoring, checkpoints
    print(f"{fitted}: {per_second:.1f} steps/s in the probe, {values['steps']} steps")
steps = values["steps"]
values |= {"valid_every": max(1, steps // 4), "checkpoint_every": max(1, steps // 4)}
json.dump(values, open(fitted, "w"), indent=1)
PY
}
for config in "${configs[@]}"; do fit "$config"; done

train() {
    python3 -m valle.train --config "$out/$(name "$1").json" --data "$tokens"/train* --valid "$tokens/valid" \
        --out "$out/$(name "$1")" --time-limit "$(python3 -c "print($minutes * 1.05)")" > "$out/$(name "$1").log" 2>&1
}
status=0
side_by_side train {} || status=$?
for config in "${configs[@]}"; do
    n=$(name "$config")
    tail -c 400 "$out/$n.log"; echo
    grep valid_loss "$out/$n/metrics.jsonl" | tail -n 1 || true
    python3 -c "from pathlib import Path; from valle.train.plots import plot_metrics; \
plot_metrics([Path('$out/$n/metrics.jsonl')], ['loss', 'accuracy', 'valid_loss'], Path('$out/$n.png'), '$n')" || true
done
python3 - "$out" "${configs[@]}" <<'PY'
import sys
from pathlib import Path
import torch
from valle.model.stage import Stage
out = Path(sys.argv[1])
for config in sys.argv[2:]:
    folder = out / Path(config).stem
    if not (folder / "model").exists():  # that stage failed: its log says why; pack the others
        continue
    weights = folder / "ema" if (folder / "ema").exists() else folder / "model"  # the average, where the config keeps one
    model = Stage.from_pretrained(weights)
    model.save_pretrained(folder / "half", model.trained_on, torch.float16)
PY
packed=()
for config in "${configs[@]}"; do n=$(name "$config"); packed+=("$n.json" "$n.log"); [ -f "$out/$n.png" ] && packed+=("$n.png"); [ -d "$out/$n/half" ] && packed+=("$n/half" "$n/metrics.jsonl"); done
tar cf - -C "$out" "${packed[@]}" | split -b 15M - "$out/trained.tar.part-"
exit $status
