#!/bin/bash
# DDP without SLURM: torchrun starts one process per GPU on each node; Lightning reads the
# ranks from torchrun's environment (TorchElasticEnvironment).
#
# One node, every GPU:
#   experiments/slurm/torchrun.sh
# Two nodes with 8 GPUs each (run on both; node 0's address is the rendezvous point):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 GPUS_PER_NODE=8 experiments/slurm/torchrun.sh
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 GPUS_PER_NODE=8 experiments/slurm/torchrun.sh
#
# Extra arguments are LightningCLI keys and win over the configs. Resume after a stop with
# --ckpt_path "$RUN_DIR/checkpoints/last.ckpt".
set -euo pipefail

# Phase configs, in order (overlays such as finetune.yaml go after initial.yaml).
CONFIGS=${CONFIGS:-configs/initial.yaml}
config_args=()
for config in $CONFIGS; do config_args+=(--config "$config"); done
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi --list-gpus | wc -l)}
RUN_DIR=${RUN_DIR:-outputs/torchrun}

# trainer.devices must equal torchrun's processes per node.
exec torchrun \
    --nnodes="$NNODES" \
    --node-rank="$NODE_RANK" \
    --nproc-per-node="$GPUS_PER_NODE" \
    --master-addr="$MASTER_ADDR" \
    --master-port="$MASTER_PORT" \
    -m pconv fit \
    "${config_args[@]}" \
    --config configs/ddp.yaml \
    --trainer.devices="$GPUS_PER_NODE" \
    --trainer.num_nodes="$NNODES" \
    --trainer.default_root_dir="$RUN_DIR" \
    --trainer.logger.init_args.save_dir="$RUN_DIR" \
    --checkpoint.dirpath="$RUN_DIR/checkpoints" \
    "$@"
