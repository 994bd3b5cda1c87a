#!/usr/bin/env bash
# Gradescope's setup.sh: run once, as root, when Gradescope builds the
# autograder's image. Installs the course's Debian packages and builds the
# library and the checkers (build/release), which `./course grade` reuses for
# every submission. exercises/README.md, "For teachers", says how to make the
# autograder's zip. CORELAB_AUTOGRADER_SOURCE changes where the course is
# (default /autograder/source, where Gradescope unpacks the zip).
set -euo pipefail
source_dir="${CORELAB_AUTOGRADER_SOURCE:-/autograder/source}"
cd "$source_dir"
./course check --prepare
