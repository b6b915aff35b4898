# pd-study: the two commands of the README are `make book` and `make test`.
# Everything else here is a step they call.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
JOBS   ?= 2
PROFILE ?= demo

.PHONY: setup test book study verdict twin check-manifest bench clean-results

## setup: create .venv and install pdlib with its test and book extras (the
## book's MathJax, served offline) at the reference versions
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test,book]'
	touch $@

## test: set up, then run the whole test suite (CI runs exactly this)
test: setup
	bash tools/ensure-chromium.sh
	bash tools/ensure-slurm.sh
	$(PY) -m pytest

## twin: generate the default digital twin (140 patients) into data/twin, and
## the independent twin (seed 7) the demo's 2D models are pretrained on
twin: setup
	$(PY) -m pdlib twin --out data/twin --jobs $(JOBS)
	$(PY) -m pdlib twin --out data/pretrain_twin --seed 7 --jobs $(JOBS)

## study: rerun what is stale in the study pipeline (profile $(PROFILE));
## stamps decide what is stale (see workflow/Snakefile), not file times
study: twin
	$(VENV)/bin/snakemake --snakefile workflow/Snakefile -j $(JOBS) --rerun-triggers mtime params --config profile=$(PROFILE)

## verdict: the verdict study (workflow/config/verdict.yaml: five paired seeds,
## controls, out-of-fold thresholds, an external twin; 1 to 1.5 hours on 2
## cores), rendered into book/verdict; `make book` then shows it as its own part
verdict: twin
	$(VENV)/bin/snakemake --snakefile workflow/Snakefile -j $(JOBS) --rerun-triggers mtime params --config profile=verdict

## book: set up, generate the twin, rerun what is stale, build the book; a
## result still stale fails the build when CI=true and is warned about otherwise
book: study
	$(PY) -m pdlib.pipeline check-stale --config profile=$(PROFILE)
	$(VENV)/bin/jupyter-book build book

check-manifest: setup
	$(PY) -m pdlib check-manifest data_manifest

bench: setup
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done
