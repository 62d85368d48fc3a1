#!/usr/bin/env bash
# One command for everything:
#   ./run.sh [run options]   set up (first time only), then folds -> train -> blend [-> submit]
#   ./run.sh test [pytest args]   set up the same way, then run the test suite
# Any other first word that is a `python -m solution` command (folds, train, blend, submit,
# predict, kernel) is passed through after set-up.
set -euo pipefail
# The kit runs from its own folder, so the defaults input/, folds/, output/ are the kit's; a path the user
# gives (--input, --output, --folds-dir, predict --file, ...) is taken against the folder they ran this from.
CALLER_DIR="$PWD"
cd "$(dirname "$0")"

VENV="${SOLUTION_VENV:-.venv}"
TORCH_CPU_VERSION="2.13.0"

log() { printf '[run.sh] %s\n' "$*" >&2; }

setup() {
  local extras="$1"
  if [ "${SOLUTION_NO_VENV:-0}" = "1" ]; then
    PY="$(command -v python3 || command -v python)"
  else
    if [ ! -x "$VENV/bin/python" ]; then
      # On Kaggle/Colab images torch (with CUDA) is already installed system-wide: see it
      # through the venv instead of downloading another copy.
      if python3 -c 'import torch' >/dev/null 2>&1; then
        log "creating $VENV (reusing the system torch)"
        python3 -m venv --system-site-packages "$VENV"
      else
        log "creating $VENV"
        python3 -m venv "$VENV"
      fi
    fi
    PY="$VENV/bin/python"
  fi
  # Reinstall only when the declared dependencies change or an extra not installed yet is asked for.
  local base stamp="$VENV/.solution-setup" old="" have=""
  base="$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)"
  [ -f "$stamp" ] && read -r old have < "$stamp" || true
  if [ "$old" = "$base" ] && covers "$have" "$extras" && "$PY" -c 'import solution, torch' >/dev/null 2>&1; then
    return 0
  fi
  [ "$old" = "$base" ] && extras="$(union "$have" "$extras")"
  log "installing the kit into $VENV${extras:+ (extras: $extras)}"
  "$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    # An unpinned torch would pull a multi-GB CUDA build; the CPU wheel is what a laptop needs.
    log "no torch found: installing the CPU build torch==$TORCH_CPU_VERSION"
    "$PY" -m pip install -q "torch==$TORCH_CPU_VERSION" \
      || "$PY" -m pip install -q "torch==$TORCH_CPU_VERSION" --index-url https://download.pytorch.org/whl/cpu
  fi
  "$PY" -m pip install -q -e ".${extras:+[$extras]}"
  mkdir -p "$VENV" && echo "$base ${extras:--}" > "$stamp"
}

# covers HAVE WANT: every comma-separated extra of WANT is in HAVE
covers() { local e; for e in ${2//,/ }; do [[ ",$1," == *",$e,"* ]] || return 1; done; }
union() { local out="$1" e; [ "$out" = "-" ] && out=""; for e in ${2//,/ }; do covers "$out" "$e" || out="${out:+$out,}$e"; done; echo "$out"; }

# What each use needs beyond the kit: the tests pytest (and bitsandbytes: they train 4-bit models on the CPU; ray);
# a machine with an NVIDIA GPU bitsandbytes for QLoRA; --engine ray Ray.
gpu_extra=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu_extra="gpu"; fi

# extras ARGS: the GPU's extra, plus ray where the arguments ask for --engine ray
extras() {
  local want="$gpu_extra" prev="" a
  for a in "$@"; do
    if [ "$a" = "--engine=ray" ] || { [ "$prev" = "--engine" ] && [ "$a" = "ray" ]; }; then want="$(union "$want" ray)"; fi
    prev="$a"
  done
  echo "$want"
}

case "${1:-}" in
  test)
    shift
    setup "dev${gpu_extra:+,$gpu_extra}"
    log "ruff check (ruff.toml: pyflakes, isort, pycodestyle at 120 columns)"
    "$PY" -m ruff check --quiet .
    exec "$PY" -m pytest -q "$@"
    ;;
  folds|train|blend|submit|predict|kernel|run)
    cmd="$1"; shift
    setup "$(extras "$@")"
    SOLUTION_CWD="$CALLER_DIR" exec "$PY" -m solution "$cmd" "$@"
    ;;
  -h|--help)
    setup "$gpu_extra"
    exec "$PY" -m solution --help
    ;;
  *)
    setup "$(extras "$@")"
    SOLUTION_CWD="$CALLER_DIR" exec "$PY" -m solution run "$@"
    ;;
esac
