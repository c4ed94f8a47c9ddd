#!/usr/bin/env bash
# One-command, idempotent set-up of ./.venv with the pinned OpenMMLab stack and this package (make setup).
#
#   MMLOCALREL_WHEELHOUSE        where built wheels are cached (default ~/.cache/mmlocalrel/wheelhouse);
#                                one folder per key torch-<torch.__version__>-<cpXY>.
#   MMLOCALREL_EXTRA_WHEELHOUSE  a read-only wheelhouse looked up first (.ci/run points it at ../shared/wheels).
#   PYTHON                       the interpreter that creates the venv (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WHEELHOUSE=${MMLOCALREL_WHEELHOUSE:-$HOME/.cache/mmlocalrel/wheelhouse}
EXTRA_WHEELHOUSE=${MMLOCALREL_EXTRA_WHEELHOUSE:-}
MMCV_VERSION=2.1.0
TORCH_VERSION=2.13.0

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
pip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }

# The stamp records what was installed; a second run with nothing changed only checks it.
stamp="$VENV/.mmlocalrel-stack"
want=$(cat requirements/*.txt tools/setup_env.sh | sha1sum | cut -d' ' -f1)

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Keep a torch that is already there (a CUDA build on a GPU box); otherwise the pinned CPU build.
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    pip install "torch==$TORCH_VERSION"
  fi
  pip install -r requirements/build.txt

  key=$("$PY" -c 'import sys, torch; print(f"torch-{torch.__version__}-cp{sys.version_info[0]}{sys.version_info[1]}")')
  if ! "$PY" -c "import mmcv, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
    wheel=""
    for house in "$EXTRA_WHEELHOUSE" "$WHEELHOUSE"; do
      [ -n "$house" ] || continue
      for f in "$house/$key"/mmcv-"$MMCV_VERSION"-*.whl; do
        [ -f "$f" ] && wheel=$f && break 2
      done
    done
    if [ -z "$wheel" ]; then
      echo "setup: no mmcv $MMCV_VERSION wheel for $key; building it from source into $WHEELHOUSE/$key (~14 min on 2 cores)"
      mkdir -p "$WHEELHOUSE/$key"
      MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel --no-build-isolation --no-deps \
        -w "$WHEELHOUSE/$key" "mmcv==$MMCV_VERSION"
      wheel=$(ls "$WHEELHOUSE/$key"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)
    fi
    echo "setup: installing $wheel"
    pip install --no-deps "$wheel"
    # mmcv's own runtime requirements (its wheel was installed without them), mmengine at the pin of runtime.txt
    pip install addict packaging Pillow pyyaml yapf opencv-python "$(grep '^mmengine' requirements/runtime.txt)"
  fi
  pip install -r requirements/runtime.txt -r requirements/tests.txt
  echo "$want" > "$stamp"
fi

# This package (editable): compiles mmlocalrel._ext from ops/ when a source is newer than the built library.
ext=$(ls mmlocalrel/_ext*.so 2>/dev/null | head -n1 || true)
if [ -z "$ext" ] || [ -n "$(find ops setup.py -newer "$ext" -type f 2>/dev/null | head -n1)" ] \
   || ! "$PY" -c 'import mmlocalrel' 2>/dev/null; then
  MAX_JOBS=${MAX_JOBS:-$(nproc)} pip install --no-build-isolation --no-deps -e .
  # an editable install does not touch an up-to-date .so; make its time stamp say it is current
  touch mmlocalrel/_ext*.so
fi
"$PY" -c 'import mmlocalrel, mmlocalrel.ops as o; print("setup: mmlocalrel", mmlocalrel.__version__, "| extension:", o.extension_status())'
