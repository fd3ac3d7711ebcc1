# Two commands do all the set-up on a fresh machine:
#   make demo   - .venv with the core install, then the main job on the shipped example photo -> ./out
#   make test   - .venv with the dev extras (CPU torch pinned in constraints.txt), then the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export HF_HUB_OFFLINE := 1

.PHONY: demo test serve models contact-sheet install-core install-dev install-server bench screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.core

$(VENV)/.server: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt -e ".[server]"
	touch $@ $(VENV)/.core

install-core: $(VENV)/.core
install-dev: $(VENV)/.dev
install-server: $(VENV)/.server

# The default cut-out model (u2netp, 4.6 MB) into the model dir, once; checksum-verified.
# Offline with no source reachable, packshot still works with the classical engine.
models: $(VENV)/.core
	-$(VENV)/bin/packshot models pull u2netp

demo: $(VENV)/.core models
	@rm -rf out
	$(VENV)/bin/packshot generate examples/mug.jpg --prompt "on a white marble table, soft morning light from the left" -n 4 --seed 7 --aspect 1:1 -o out/marble
	$(VENV)/bin/packshot generate examples/mug.jpg --preset amazon -n 1 --seed 7 -o out/amazon
	$(VENV)/bin/packshot cutout examples/mug.jpg -o out/cutout.png
	$(PY) examples/before_after.py examples/mug.jpg out/marble out/before_after.png
	@echo "Demo results are in $(CURDIR)/out (marble/, amazon/, cutout.png, before_after.png); see out/marble/results.json"

test: $(VENV)/.dev models
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 1; fi; exit $$rc

# The web app and REST API (needs the server extra, which `make demo` does not install)
serve: $(VENV)/.server models
	$(VENV)/bin/packshot serve --port 8000

# README contact sheet (rendered CC0 photos, previous release e89ab7d vs this version) -> docs/images/;
# the same sheet of the real seller photos in ../shared (never committed: their licence) -> out/
PREV_RELEASE ?= e89ab7d
SEED := ../shared/data/seed_products
contact-sheet: $(VENV)/.core models
	test -d .prev || git worktree add --detach .prev $(PREV_RELEASE)
	$(PY) examples/contact_sheet.py --previous .prev
	$(PY) examples/contact_sheet.py --previous .prev --out out/contact_sheet_seed.png \
	  --photos $(SEED)/nivedkris_product3_aftershave_bottle/product3.jpg \
	           $(SEED)/nivedkris_product4_loafers/product4.jpg $(SEED)/kryptixone_lion_tshirt/GirlWearingLion_585x863.png

bench: $(VENV)/.dev
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

screenshots: $(VENV)/.dev
	PACKSHOT_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_web.py -k seller_session

clean:
	rm -rf out .pytest_cache build dist src/*.egg-info
