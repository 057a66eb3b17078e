"""PostgreSQL for the local stack: a configured server, or a private cluster we own.

The private cluster lives under the state folder, listens on a loopback port chosen
once, and is created with Debian's postgresql binaries (installed when missing).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from creditstream.stack.process import StackError, alive, free_port, port_open, read_pid, tail
from schemas.config import Settings

DB_NAME = "creditstream"
DB_USER = "creditstream"


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def install_postgres() -> Path:
    """Install Debian's postgresql package (needs root) and return its bin directory."""
    if os.geteuid() != 0:
        raise StackError("PostgreSQL binaries are missing; install Debian's postgresql package "
                         "(apt-get install postgresql) or set CREDITSTREAM_PG_URL")
    print("postgres: installing Debian's postgresql package...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed:\n{res.stdout[-1500:]}{res.stderr[-1500:]}")
    bindir = find_bindir()
    if not bindir:
        raise StackError("postgresql installed but initdb was not found")
    return bindir


class Postgres:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.home = settings.state_dir / "postgres"
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.port_file = self.home / "port"
        self.password_file = self.home / "password"

    @property
    def external(self) -> bool:
        return self.s.pg_url_override is not None

    def _run_as(self) -> list[str]:
        # initdb refuses to run as root; the cluster belongs to the postgres account then.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"]
        return []

    def _owner(self) -> tuple[int, int]:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            return pw.pw_uid, pw.pw_gid
        return os.getuid(), os.getgid()

    def _pg(self, bindir: Path, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self._run_as(), str(bindir / tool), *args], capture_output=True, text=True)
        if check and res.returncode != 0:
            raise StackError(f"{tool} failed ({res.returncode}): {res.stdout[-1500:]}{res.stderr[-1500:]}\n"
                             f"log: {self.log}\n{tail(self.log)}")
        return res

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        pid = read_pid(self.data / "postmaster.pid")
        return pid if alive(pid) else None

    def _init_cluster(self, bindir: Path) -> None:
        uid, gid = self._owner()
        self.home.mkdir(parents=True, exist_ok=True)
        os.chown(self.home, uid, gid)
        password = secrets.token_urlsafe(18)
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(password + "\n")
        os.chown(pwfile, uid, gid)
        try:
            self._pg(bindir, "initdb", "-D", str(self.data), "-U", DB_USER, f"--pwfile={pwfile}",
                     "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8",
                     "--locale=C", "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)
        self.password_file.write_text(password)
        self.password_file.chmod(0o600)
        self.port_file.write_text(str(free_port()))

    def start(self) -> bool:
        """Start our private cluster unless it runs; True when this call started it."""
        if self.external:
            return False
        if self.pid():
            return False
        bindir = find_bindir() or install_postgres()
        if not (self.data / "PG_VERSION").exists():
            self._init_cluster(bindir)
        port = self.port
        assert port is not None
        if port_open("127.0.0.1", port):
            port = free_port()  # someone else took it since; the URL file follows
            self.port_file.write_text(str(port))
        uid, gid = self._owner()
        for path in (self.home, self.log):
            if not path.exists():
                path.touch()
            os.chown(path, uid, gid)
        opts = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.home} "
                "-c max_connections=200 -c shared_buffers=256MB -c fsync=on "
                "-c synchronous_commit=on")
        self._pg(bindir, "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts,
                 "-w", "-t", "60", "start")
        self.s.pg_url_file.write_text(
            f"postgresql://{DB_USER}:{self.password_file.read_text()}@127.0.0.1:{port}/{DB_NAME}")
        self.s.pg_url_file.chmod(0o600)
        return True

    async def wait_ready(self, timeout: float) -> None:
        """Ready means a SQL query answers; the database is created on first start."""
        import asyncpg

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        url = self.s.pg_url
        while time.monotonic() < deadline:
            try:
                conn = await asyncpg.connect(url, timeout=3)
                try:
                    await conn.fetchval("SELECT 1")
                    return
                finally:
                    await conn.close()
            except asyncpg.InvalidCatalogNameError:
                await self._create_database(url)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                last = exc
                await asyncio.sleep(0.2)
        where = "the configured server" if self.external else f"log: {self.log}\n{tail(self.log)}"
        raise StackError(f"PostgreSQL did not answer `SELECT 1` within {timeout:.0f}s ({last!r}); {where}")

    async def _create_database(self, url: str) -> None:
        import asyncpg

        base, _, name = url.rpartition("/")
        conn = await asyncpg.connect(f"{base}/postgres", timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.external or not self.pid():
            return
        bindir = find_bindir()
        if bindir:
            self._pg(bindir, "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop",
                     check=False)

    def status(self) -> dict[str, object]:
        if self.external:
            return {"service": "postgres", "running": None, "address": "(configured by CREDITSTREAM_PG_URL)",
                    "log": None}
        pid = self.pid()
        return {"service": "postgres", "running": bool(pid), "pid": pid,
                "address": f"127.0.0.1:{self.port}" if self.port else None, "log": str(self.log),
                "data": str(self.data)}
