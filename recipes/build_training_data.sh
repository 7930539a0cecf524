#!/usr/bin/env bash
# Every corpus and token folder the recipes train on, from nothing but Debian packages, in two
# parallel lanes of one core each (about 75 minutes on 2 cores), then the alignments, by the frame
# aligner that ships with the package, and the pitch tracks the frame stage trains on. Run again
# after an interruption: each step resumes or is skipped when its output is complete.
#
#   bash recipes/build_training_data.sh          # as root (apt-get); writes runs/
#   bash recipes/build_training_data.sh arms     # only what the tournament's 10-hour arms train and are
#                                                # scored on (the ARMS folders; about 40 minutes)
#   WORKERS=1 bash recipes/build_training_data.sh   # on one core, the lanes one after the other, beside a
#                                                   # training run on the other core
#
# Lane A: the 38 synthetic English hours (runs/corpus10h + runs/corpus_s1, recipes/tournament.md).
# Lane B: the human speech of Debian's packages mixed with corpus10h (runs/mix1, recipes/mixed_corpus.md)
#         and a perturbed copy of each human training speaker (`valle data perturb`), then synthetic
#         speakers in thirteen more languages, and (not yet tokenised: no run trains on them) in the
#         human data's eleven other languages and accents.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=65536
scope=${1:-all}
workers=${WORKERS:-2}
case $scope in  # the synthetic languages whose training splits are tokenised
  all) languages="es de it ru cs bg pt-br fr-fr nl ro da hu uk" ;;
  arms) languages="es de bg ro" ;;
  *) echo "usage: $0 [all|arms]" >&2; exit 2 ;;
esac

tokens() {  # tokens MANIFEST OUT: tokenise unless OUT is complete
  test -f "$2/index.json" || nice valle data tokenize "$1" --codec compact --out "$2" --workers 1
}

lane_a() {
  nice valle data synth-corpus runs/corpus10h --hours 10 --seed 0 --workers 1
  for split in train valid test; do tokens runs/corpus10h/$split.jsonl runs/tokens/$split; done
  test $scope = all || return 0
  nice valle data synth-corpus runs/corpus_s1 --hours 30 --seed 1 --speakers 320 --workers 1
  python - <<'PY'   # every s1 split trains; ids and speakers prefixed "s1"; sentences of held-out splits dropped
import json
held = {json.loads(l)["text"] for s in ("valid", "test") for l in open(f"runs/corpus10h/{s}.jsonl")}
rows = [json.loads(l) for l in open("runs/corpus10h/train.jsonl")]
for split in ("train", "valid", "test"):
    for line in open(f"runs/corpus_s1/{split}.jsonl"):
        r = json.loads(line)
        if r["text"] not in held:
            rows.append(r | {"audio": "../corpus_s1/" + r["audio"], "id": "s1" + r["id"], "speaker": "s1" + r["speaker"]})
with open("runs/corpus10h/train_plus_s1.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
PY
  tokens runs/corpus10h/train_plus_s1.jsonl runs/tokens/train38h
}

lane_b() {
  valle data install-sources debian
  apt-get install -y fortunes-es fortunes-de fortunes-it fortunes-ru fortunes-cs fortunes-bg fortunes-br \
    manpages-da manpages-fr manpages-hu manpages-nl manpages-ro manpages-uk > /dev/null
  apt-get install -y --no-install-recommends $(for L in ar be ca el he lt ml nb tn; do echo libreoffice-l10n-$L; done) \
    > /dev/null   # their message catalogs, without LibreOffice itself
  nice valle data prepare debian runs/debian
  while ! test -f runs/corpus10h/test.jsonl; do sleep 20; done   # lane A's first corpus
  valle data mix runs/mix1 $(for f in asterisk fillets tuxpaint festvox-ru klettres ktuberling; do echo --human runs/debian/$f.jsonl; done) \
    --synthetic runs/corpus10h --held-out 6
  python - <<'PY'   # the human rows of each split
import json
human = set(json.load(open("runs/mix1/mix.json"))["human_speakers"])
for split in ("train", "valid", "test"):
    rows = [l for l in open(f"runs/mix1/{split}.jsonl") if json.loads(l)["speaker"] in human]
    open(f"runs/mix1/{split}_human.jsonl", "w").writelines(rows)
PY
  # the test split's people scored in the tournament: the Greek speaker left out, whose language no stage knows
  grep -v '"language": "el"' runs/mix1/test_human.jsonl > runs/mix1/test_human_no_el.jsonl
  for split in train valid test; do tokens runs/mix1/${split}_human.jsonl runs/tokens/mix1_human_$split; done
  nice valle data perturb runs/mix1/train_human.jsonl runs/mix1_perturbed --copies 1 --workers 1   # a new person of each
  tokens runs/mix1_perturbed/perturbed.jsonl runs/tokens/mix1_human_perturbed
  for L in $languages; do
    nice valle data synth-corpus runs/synth_$L --language $L --hours 1 --speakers 40 --seed 0 --workers 1
    tokens runs/synth_$L/train.jsonl runs/tokens/synth_${L}_train
  done
  test $scope = all || return 0
  for L in ar be ca el he lt ml nb tn en-gb es-419; do   # speakers.json is written last
    test -f runs/synth_$L/speakers.json ||
      nice valle data synth-corpus runs/synth_$L --language $L --hours 1 --speakers 40 --seed 0 --workers 1
  done
}

# The frame stage's inputs (recipes/default_model.md): the phoneme and the pitch of every frame beside each
# folder's shards. The phonemes come from the aligner that ships for the bundled codec
# (valle/train/pretrained/aligner-compact-16k), which was trained from a flat start on 6,000 utterances of
# the 10 English hours and the human speech as this script makes them, in 34 minutes on two cores:
#   valle data train-aligner runs/tokens/train runs/tokens/mix1_human_train --out runs/aligner_frames

mkdir -p runs
if test $workers = 1; then
  lane_a > runs/build_lane_a.log 2>&1
  lane_b > runs/build_lane_b.log 2>&1
else
  lane_a > runs/build_lane_a.log 2>&1 & a=$!
  lane_b > runs/build_lane_b.log 2>&1 & b=$!
  wait $a
  wait $b
fi
echo "training data complete: $(ls runs/tokens | tr '\n' ' ')"
test -f runs/aligner_frames/config.json || cp -r valle/train/pretrained/aligner-compact-16k runs/aligner_frames

DATA="runs/tokens/train38h runs/tokens/mix1_human_train $(for L in bg cs de es fr-fr it nl pt-br ro ru; do echo runs/tokens/synth_${L}_train; done)"
test $scope = all || DATA="runs/tokens/mix1_human_train $(for L in $languages; do echo runs/tokens/synth_${L}_train; done)"
for folder in runs/tokens/valid runs/tokens/test runs/tokens/train $DATA runs/tokens/mix1_human_perturbed; do
  test -f $folder/alignments.safetensors || nice valle data align $folder --aligner runs/aligner_frames --workers $workers
  test -f $folder/pitch.safetensors || nice valle data pitch $folder --workers $workers
done
echo "alignments and pitch tracks complete"
