# The README's two commands: `make demo` and `make test`. Both set up ./.venv first (idempotent, fast when done).
PY := .venv/bin/python
JOBS ?= 2

.PHONY: setup test demo demo-seg data clean

setup:
	bash tools/setup_env.sh

test: setup
	$(PY) -m pytest -n $(JOBS) -p no:cacheprovider tests

data: setup
	$(PY) tools/generate_shapes.py data/shapes

# Generate the shapes dataset, train Mask R-CNN R50-GC on CPU from scratch, evaluate COCO bbox/segm AP.
demo: data
	$(PY) tools/demo.py configs/demo/mask_rcnn_r50_gc_shapes.py --work-dir work_dirs/demo_mask_rcnn_r50_gc

# Generate the shapes dataset, train a narrow FCN-R50 + GC (output stride 16) from scratch on CPU, evaluate mIoU (mmseg IoUMetric).
demo-seg: data
	$(PY) tools/demo.py configs/demo/seg/fcn_r50-d8_gc_shapes.py --work-dir work_dirs/demo_fcn_r50-d8_gc

clean:
	rm -rf build work_dirs mmlocalrel/_ext*.so
