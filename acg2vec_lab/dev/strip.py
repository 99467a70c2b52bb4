"""``python -m acg2vec_lab.dev.strip NB...``: remove outputs and execution counts in place."""
import sys

from acg2vec_lab.dev.notebooks import strip_outputs

if __name__ == "__main__":
    for path in sys.argv[1:]:
        strip_outputs(path)
        print(f"stripped {path}")
