#!/usr/bin/env bash
# The GPU runbook: runs clothtag's bench suite on a Linux x86-64 machine with an NVIDIA GPU and no
# network, from what bench/gpu/pack.sh put beside this script (Node, the app, the Vulkan loader).
#   bash run.sh [RESULTS_DIR] [--quick] [--only STEP,STEP,...]
# Prints the adapter, its limits and features (f16, subgroups, subgroup matrices), then the suite;
# every step's output goes to RESULTS_DIR (default ./results) as .txt and .json. --only runs some
# steps (roof gemm memory conv train-step net tune conv-tuned torch; doctor always runs), so that a
# machine lent for a few minutes a call can take the suite in parts into the same RESULTS_DIR.
# VK_ICD_FILENAMES, when set, picks the driver (e.g. lavapipe, to rehearse on a CPU machine).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
results=$here/results
quick=0
only=''
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --only) only=",$2,"; shift ;;
    *) results=$1 ;;
  esac
  shift
done
work=${CLOTHTAG_GPU_WORK:-${TMPDIR:-/tmp}/clothtag-gpu}
mkdir -p "$results" "$work"
results=$(cd "$results" && pwd)
say() { echo "== $*"; }

# 1. Node, from the xz-compressed binary (python3's lzma where there is no xz).
if [ ! -x "$work/node" ]; then
  if command -v xz >/dev/null; then xz -dc "$here/node.xz" > "$work/node"
  else python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())" "$here/node.xz" > "$work/node"; fi
  chmod +x "$work/node"
fi
node=$work/node
say "node $("$node" --version)"

# 2. The app (dist/ and its packages).
if [ ! -f "$work/app/dist/src/cli/main.js" ] || [ "$here/app.tar.xz" -nt "$work/app/dist/src/cli/main.js" ]; then
  rm -rf "$work/app" && mkdir -p "$work/app"
  if command -v xz >/dev/null; then tar -xJf "$here/app.tar.xz" -C "$work/app"
  else python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$here/app.tar.xz" "$work/app"; fi
fi
export CLOTHTAG_TFJS_GRADIENTS=$work/app/tfjs-gradients.cjs

# 3. The Vulkan loader we carry, and the NVIDIA driver's ICD (written from the driver's library
#    when the container has the library but no ICD file).
export LD_LIBRARY_PATH=$here/vulkan/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work/xdg}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json /usr/local/share/vulkan/icd.d/nvidia_icd*.json; do
    [ -f "$f" ] && { export VK_ICD_FILENAMES=$f; break; }
  done
fi
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  lib=$( (ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0/ {print $NF; exit}') || true)
  [ -z "$lib" ] && lib=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 /usr/lib/libGLX_nvidia.so.0 2>/dev/null | head -1)
  if [ -n "$lib" ]; then
    printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.3.0" } }\n' "$lib" > "$work/nvidia_icd.json"
    export VK_ICD_FILENAMES=$work/nvidia_icd.json
  fi
fi
say "VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-(none found: the NVIDIA Vulkan driver is missing; Dawn will find no adapter)}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/   /'

cd "$work/app"
clothtag() { "$node" dist/src/cli/main.js "$@"; }
step() { # step NAME TIMEOUT ARGS...: one suite step, its output kept
  local name=$1 limit=$2; shift 2
  if [ -n "$only" ] && [ "$name" != doctor ] && [[ "$only" != *",$name,"* ]]; then return 0; fi
  say "$name: clothtag $*"
  timeout "$limit" "$node" dist/src/cli/main.js "$@" 2>&1 | grep -v 'artificially reduced' | tee "$results/$name.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || say "$name exited with $rc"
}

# 4. The suite. Tuning goes to a table of its own, then the conv layers run again with it.
export CLOTHTAG_TUNING=$results/tuning.json
step doctor 120 doctor || exit 1
grep -q 'kernel check (2x2 GEMM): ok' "$results/doctor.txt" || { say "no working adapter: stopping"; exit 1; }
if [ "$quick" = 1 ]; then
  step roof 120 bench roof --reps 3 --json "$results/roof.json"
  step gemm 300 bench gemm --quick --reps 3 --json "$results/gemm.json"
  step memory 120 bench memory --reps 3 --json "$results/memory.json"
  step conv 300 bench conv --nets repvgg_a0 --size 64 --reps 3 --json "$results/conv.json"
  step train-step 300 bench train-step --steps 3 --json "$results/train-step.json"
  step net 300 bench net --net cloth_resnet_a --width 0.25 --size 64 --batch 8 --steps 2 --json "$results/net.json"
else
  step roof 120 bench roof --json "$results/roof.json"
  step gemm 300 bench gemm --json "$results/gemm.json"
  step memory 120 bench memory --json "$results/memory.json"
  step conv 600 bench conv --size 224 --batch 16 --json "$results/conv.json"
  step train-step 300 bench train-step --steps 10 --json "$results/train-step.json"
  step net 600 bench net --net cloth_resnet_a --width 1 --size 224 --batch 32 --steps 5 --json "$results/net.json"
  step tune 600 tune --net cloth_resnet_a --width 1 --size 224 --batch 16
  step conv-tuned 600 bench conv --size 224 --batch 16 --nets resnet50 --passes forward --json "$results/conv-tuned.json"
  # PyTorch on the same GPU, fp32 with TF32 off, where the machine has it (it is not carried).
  if [ -n "$only" ] && [[ "$only" != *",torch,"* ]]; then :
  elif python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    say "pytorch: bench/gpu/torch_reference.py"
    python3 "$here/torch_reference.py" --conv "$results/conv.json" --json "$results/torch.json" | tee "$results/torch.txt"
  else
    say "pytorch: not on this machine (no native reference column)"
  fi
fi
say "results in $results"
