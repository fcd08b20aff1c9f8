"""The installed package, built from what the Dockerfile copies into the image: both contracts'
sources come with it, and devstack compiles them from the installed tree, not from a checkout."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.chain import compile_mock_usdc
from devstack.mandates import compile_mandates

REPO = Path(__file__).parents[2]


def _copied_by_dockerfile() -> list[str]:
    """The sources the image's build stage copies into /src (`COPY <path> ...`)."""
    lines = (REPO / "Dockerfile").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("COPY ")]


def test_the_installed_package_compiles_both_contracts(tmp_path: Path) -> None:
    source, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "cwd"
    elsewhere.mkdir()
    source.mkdir()
    for path in _copied_by_dockerfile():
        if (REPO / path).is_dir():
            ignored = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / path, source / path, ignore=ignored)
        else:
            shutil.copy(REPO / path, source / path)
    assert "contracts" in _copied_by_dockerfile()
    # The image runs `pip install .`; --no-build-isolation uses this environment's setuptools.
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    installed = subprocess.run(
        [*pip, "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    assert (target / "contracts" / "mandates.vy").read_bytes() == (
        REPO / "contracts" / "mandates.vy"
    ).read_bytes()
    probe = (
        "import devstack.chain as chain, devstack.mandates as mandates\n"
        "print(mandates.__file__)\n"
        "print(chain.compile_mock_usdc()[1])\n"
        "print(mandates.compile_mandates()[1])\n"
    )
    compiled = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stdout.splitlines() == [
        str(target / "devstack" / "mandates.py"),
        compile_mock_usdc()[1],
        compile_mandates()[1],
    ]
