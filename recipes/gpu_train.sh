#!/usr/bin/env bash
# Both stages of a model trained side by side on one GPU for a fixed time, under bf16 autocast,
# from tokenised shards carried to the machine; checkpoints, metrics and curves land in OUT.
#
#   bash recipes/gpu_train.sh AR_CONFIG NAR_CONFIG TOKENS OUT [MINUTES] [RESUME_FROM]
#
# TOKENS holds train/ and valid/ as written by `valle data tokenize` (tens of MB for hours of
# speech). Training needs only torch, safetensors and tqdm, so it runs from the source tree
# with whatever PyTorch the machine has. RESUME_FROM, a folder with ar/ and nar/ of an earlier
# run, continues those runs (their checkpoints are copied into OUT first). What comes back from a
# lent machine is limited (files of 16 MiB), so the script ends by packing the trained stages
# in float16 with their metrics into OUT/trained.tar.part-*; here
#   cat OUT/trained.tar.part-* | tar x -C RUN && valle export RUN/ar/half RUN/nar/half MODEL --half
# joins them for synthesis.
set -euo pipefail
ar_config=${1:?AR config} nar_config=${2:?NAR config} tokens=${3:?tokens folder} out=${4:?output folder}
minutes=${5:-8} resume_from=${6:-}
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out"
resume=()
if [ -n "$resume_from" ]; then
    for stage in ar nar; do mkdir -p "$out/$stage" && cp "$resume_from/$stage/checkpoint.pt" "$resume_from/$stage/metrics.jsonl" "$out/$stage/"; done
    resume=(--resume)
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for stage in ar nar; do
    config=$ar_config; [ "$stage" = nar ] && config=$nar_config
    python3 -m valle.train --config "$config" --data "$tokens/train" --valid "$tokens/valid" --out "$out/$stage" \
        --time-limit "$minutes" "${resume[@]}" > "$out/$stage.log" 2>&1 &
done
status=0
wait -n || status=$?
wait -n || status=$?
tail -n 3 "$out/ar.log" "$out/nar.log"
for stage in ar nar; do
    python3 -c "from pathlib import Path; from valle.train.plots import plot_metrics; \
plot_metrics([Path('$out/$stage/metrics.jsonl')], ['loss', 'accuracy', 'valid_loss'], Path('$out/$stage.png'), '$stage')" || true
done
python3 - "$out" <<'PY'
import sys
import torch
from valle.model.pretrained import load_stage, save_stage
from valle.text.vocab import PhonemeVocab
for stage in ("ar", "nar"):
    model, info = load_stage(f"{sys.argv[1]}/{stage}/model")
    save_stage(model, f"{sys.argv[1]}/{stage}/half", PhonemeVocab.from_dict(info["vocab"]), info["codec"], torch.float16)
PY
tar cf - -C "$out" ar/half nar/half ar/metrics.jsonl nar/metrics.jsonl | split -b 15M - "$out/trained.tar.part-"
exit $status
