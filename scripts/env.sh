# Sourced by the scripts: one cargo target directory outside the clone, so
# fresh clones (CI) reuse earlier builds on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mangaassist/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
