# clothtag: `make demo` and `make test` do all set-up on a fresh machine (see scripts/setup.sh).
SHELL := /bin/bash
LVP_ICD := /usr/share/vulkan/icd.d/lvp_icd.json
SWIFTSHADER_ICD := /usr/lib/chromium/vk_swiftshader_icd.json
# Dawn runs on Vulkan: lavapipe (Mesa's CPU driver) when present, else SwiftShader. Recursive (=)
# so that the choice is made after setup has installed the driver. Set it yourself for a real GPU.
export VK_ICD_FILENAMES ?= $(shell if [ -f $(LVP_ICD) ]; then echo $(LVP_ICD); elif [ -f $(SWIFTSHADER_ICD) ]; then echo $(SWIFTSHADER_ICD); fi)
export XDG_RUNTIME_DIR ?= /tmp/clothtag-xdg-$(shell id -u)
CLI := node dist/src/cli/main.js

.PHONY: all setup build typecheck test demo bench gpu-bundle doctor clean

all: build

setup:
	@bash scripts/setup.sh
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)

build: setup
	npm run --silent build

typecheck: build
	npx tsc -p tsconfig.test.json

test: typecheck
	$(CLI) doctor
	npx tap

demo: build
	$(CLI) demo

# The whole lavapipe suite, each result beside the README's tables (about 55 minutes on 2 cores, a third of it bench infer at 224x224).
bench: build
	$(CLI) bench roof --json bench/results-roof.json
	$(CLI) bench gemm --json bench/results-gemm.json
	$(CLI) bench memory --json bench/results-memory.json
	$(CLI) bench conv --json bench/results-conv.json
	$(CLI) bench train-step --steps 10 --json bench/results-train-step.json
	$(CLI) bench net --net cloth_resnet_a --json bench/results-net-resnet.json
	$(CLI) bench net --net new_fashionnet --json bench/results-net.json
	$(CLI) bench net --net cloth_resnet_a --width 1 --size 224 --batch 8 --steps 1 --no-torch --json bench/results-net-224.json
	$(CLI) bench fit --json bench/results-fit.json
	$(CLI) bench infer --net cloth_resnet_a --json bench/results-infer-resnet.json
	$(CLI) bench infer --net cloth_repvgg --json bench/results-infer-repvgg.json

# The GPU runbook's bundle (bench/gpu/run.sh on an NVIDIA machine without network).
gpu-bundle: build
	bash bench/gpu/pack.sh

doctor: build
	$(CLI) doctor

clean:
	rm -rf dist .tap src/engine/wgsl.gen.ts
