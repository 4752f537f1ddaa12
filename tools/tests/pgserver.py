"""A throwaway PostgreSQL server for the store tests: initdb + pg_ctl in a temporary directory.

The server listens only on a Unix socket inside that directory (``listen_addresses=''``) on a
random port number (the socket's name), trusts local connections, and runs as the current user,
or as ``nobody`` when the tests run as root (PostgreSQL refuses to run as root): the directory
is handed to that user and the server programs are started through ``setpriv``. :meth:`stop`
always removes everything (``pg_ctl stop -m immediate``, then the directory).
"""

import glob
import os
import random
import shutil
import subprocess
import tempfile


def _bindir():
    """The newest /usr/lib/postgresql/<version>/bin holding initdb (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise RuntimeError("PostgreSQL server programs not found (apt-get install postgresql-15)")
    return os.path.dirname(found[-1])


class Server:
    """One server; ``url`` is its ``postgresql://`` URL once :meth:`start` returned."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kbench-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = random.randint(20000, 60000)
        self.url = None
        self.started = False
        self.prefix = []
        if os.geteuid() == 0:
            import pwd
            user = pwd.getpwnam("nobody")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                           "--clear-groups", "--"]
        os.chmod(self.dir, 0o755)

    def _run(self, *cmd, timeout=120):
        """Run a server program (as the unprivileged user when root); raise on failure."""
        proc = subprocess.run(self.prefix + list(cmd), capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir, check=False,
                              env={**os.environ, "LC_ALL": "C", "HOME": self.dir})
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self):
        """initdb, start and wait until it accepts connections; return the URL."""
        bindir = _bindir()
        self._run(os.path.join(bindir, "initdb"), "-D", self.data, "-U", "kbench",
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses='' -c unix_socket_directories={self.dir} "
                   f"-c port={self.port} -c fsync=off -c max_connections=20")
        self.started = True
        self._run(os.path.join(bindir, "pg_ctl"), "-D", self.data, "-l",
                  os.path.join(self.dir, "log"), "-o", options, "-w", "-t", "60", "start")
        self._run(os.path.join(bindir, "createdb"), "-h", self.dir, "-p", str(self.port),
                  "-U", "kbench", "kbench")
        self.url = f"postgresql://kbench@/kbench?host={self.dir}&port={self.port}"
        return self.url

    def log(self):
        """The server log (for a failure message)."""
        try:
            with open(os.path.join(self.dir, "log"), encoding="utf-8") as handle:
                return handle.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        """Stop the server (if it was started) and remove its directory."""
        try:
            if self.started:
                self._run(os.path.join(_bindir(), "pg_ctl"), "-D", self.data, "-m", "immediate",
                          "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
