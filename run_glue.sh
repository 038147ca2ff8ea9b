#!/bin/bash
# Fine-tunes and evaluates ALBERT on GLUE with the original release's recommended
# hyper-parameters (run_glue.sh of google-research/albert).
#
# Environment:
#   ALBERT_ROOT  folder of a pretrained model: albert_config.json, 30k-clean.model and the
#                checkpoint (required).
#   GLUE_DIR     GLUE root holding RTE/train.tsv etc. (default: $ALBERT_ROOT/glue).
#   OUTPUT_ROOT  results go to $OUTPUT_ROOT/<task> (default: a new temporary folder).
#   INIT_CHECKPOINT  checkpoint prefix or folder (default: $ALBERT_ROOT/model.ckpt-best).
#   PYTHON       interpreter (default: python).
#
# Usage: ALBERT_ROOT=... ./run_glue.sh [TASK ...]   (default: the eight tasks below; WNLI is
# not run, as in the original).
#
# Like the original, each task runs twice: training only, then evaluation of every saved
# checkpoint (the best becomes model.ckpt-best) and prediction on the test set.
#
# ALBERT v2 models: the v2 results were obtained without dropout in the encoder. Set
# "hidden_dropout_prob" and "attention_probs_dropout_prob" to 0 in the albert_config.json you
# pass; the classifier head keeps its dropout of 0.1 (--classifier_dropout, default 0.1).

set -euo pipefail

: "${ALBERT_ROOT:?set ALBERT_ROOT to the folder holding albert_config.json, 30k-clean.model and the checkpoint}"
GLUE_DIR="${GLUE_DIR:-${ALBERT_ROOT}/glue}"
OUTPUT_ROOT="${OUTPUT_ROOT:-$(mktemp -d)/output}"
INIT_CHECKPOINT="${INIT_CHECKPOINT:-${ALBERT_ROOT}/model.ckpt-best}"
PYTHON="${PYTHON:-python}"
cd "$(dirname "$0")"

# task warmup_step learning_rate train_step save_checkpoints_steps train_batch_size
HPARAMS="
SST-2 1256 1e-5 20935 100 32
MNLI 1000 3e-5 10000 100 128
CoLA 320 1e-5 5336 100 16
QNLI 1986 1e-5 33112 200 32
QQP 1000 5e-5 14000 100 128
RTE 200 3e-5 800 100 32
STS-B 214 2e-5 3598 100 16
MRPC 200 2e-5 800 100 32
"

run_task() {
  local task=$1 warmup=$2 lr=$3 steps=$4 save_steps=$5 batch=$6
  local common=(
    --output_dir="${OUTPUT_ROOT}/${task}"
    --data_dir="${GLUE_DIR}"
    --albert_config_file="${ALBERT_ROOT}/albert_config.json"
    --spm_model_file="${ALBERT_ROOT}/30k-clean.model"
    --do_lower_case
    --max_seq_length=512
    --optimizer=adamw
    --task_name="${task}"
    --warmup_step="${warmup}"
    --learning_rate="${lr}"
    --train_step="${steps}"
    --save_checkpoints_steps="${save_steps}"
    --train_batch_size="${batch}"
  )
  "${PYTHON}" run_classifier.py "${common[@]}" \
      --do_train --nodo_eval --nodo_predict \
      --init_checkpoint="${INIT_CHECKPOINT}"
  "${PYTHON}" run_classifier.py "${common[@]}" \
      --nodo_train --do_eval --do_predict
}

tasks=("$@")
if [ ${#tasks[@]} -eq 0 ]; then
  tasks=(SST-2 MNLI CoLA QNLI QQP RTE STS-B MRPC)
fi
for task in "${tasks[@]}"; do
  line=$(echo "${HPARAMS}" | awk -v t="${task}" 'toupper($1) == toupper(t)')
  if [ -z "${line}" ]; then
    echo "run_glue.sh: no hyper-parameters for task '${task}'; known tasks:" \
         $(echo "${HPARAMS}" | awk 'NF {print $1}') >&2
    exit 1
  fi
  # shellcheck disable=SC2086  # split the table row into run_task's arguments
  run_task ${line}
done
