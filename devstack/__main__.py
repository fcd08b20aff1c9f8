"""python -m devstack up"""

import argparse
import sys

from devstack.runner import up

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["up"], help="run the whole platform locally")
    parser.parse_args()
    sys.exit(up())
