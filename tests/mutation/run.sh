#!/usr/bin/env bash
# Mutation testing of one core module with cosmic-ray (the `test` extra); outside CI, by hand.
#   tests/mutation/run.sh objectives [SAMPLE]      # SAMPLE: test a seeded random sample of the mutants
# Run it from the repository root of a checkout that nothing else uses at the same time: cosmic-ray
# writes each mutant into the source file, runs the module's tests, and restores the file.
set -euo pipefail
module=${1:?usage: tests/mutation/run.sh MODULE [SAMPLE] (MODULE: a tests/mutation/MODULE.toml)}
sample=${2:-0}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
session=${SESSION_DIR:-$root/mutation-sessions}
mkdir -p "$session"
db="$session/$module.sqlite"
cd "$root"
export PATH="$(dirname "$python"):$PATH"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's mixopt, in CLI subprocesses too
if [ ! -f "$db" ]; then
  "$python" -m cosmic_ray.cli init "$here/$module.toml" "$db"
  [ "$sample" -gt 0 ] && "$python" "$here/sample.py" "$db" "$sample"
fi
"$python" -m cosmic_ray.cli exec "$here/$module.toml" "$db"   # resumable: re-running continues
"$python" "$here/sample.py" "$db" --report
