# The JupyterHub the real-hub tests start (tests/common/realhub.rs sets the environment).
# DummyAuthenticator, sqlite in a temp dir, everything on 127.0.0.1, and two tokens:
# hubsoak's, holding exactly the scopes the README documents, the tests' own, and one
# without admin:groups.
import asyncio
import os
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jupyterhub.spawner import Spawner

env = os.environ
work = env["HUBSOAK_TEST_DIR"]
c = get_config()  # noqa: F821 (provided by JupyterHub)

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["HUBSOAK_TEST_PORT"])
if env.get("HUBSOAK_TEST_BASE_URL"):
    c.JupyterHub.base_url = env["HUBSOAK_TEST_BASE_URL"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["HUBSOAK_TEST_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%s" % env["HUBSOAK_TEST_PROXY_API_PORT"]
c.ConfigurableHTTPProxy.command = [env["HUBSOAK_TEST_CHP"]]
c.ConfigurableHTTPProxy.pid_file = os.path.join(work, "proxy.pid")
c.JupyterHub.pid_file = os.path.join(work, "jupyterhub.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(work, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(work, "cookie_secret")
if env.get("HUBSOAK_TEST_SHARED_PASSWORD"):
    # Every user logs in with one password (JupyterHub 5.1+).
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = env["HUBSOAK_TEST_SHARED_PASSWORD"]
    c.Authenticator.allow_all = True
else:
    c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.log_level = "WARN"
c.JupyterHub.concurrent_spawn_limit = int(env.get("HUBSOAK_TEST_CONCURRENT_SPAWN_LIMIT", "100"))
c.JupyterHub.allow_named_servers = env.get("HUBSOAK_TEST_NAMED_SERVERS") == "1"
# Throttled starts come back after 1-2 s instead of 30-60 s.
c.JupyterHub.spawn_throttle_retry_range = (1, 2)

c.JupyterHub.services = [
    {"name": "hubsoak", "api_token": env["HUBSOAK_TEST_TOKEN"]},
    {"name": "tests", "api_token": env["HUBSOAK_TEST_ADMIN_TOKEN"]},
    # The README's role without admin:groups: hubsoak must say that scope is missing.
    {"name": "no-groups", "api_token": env["HUBSOAK_TEST_TOKEN"] + "-no-groups"},
    # The README's role plus read:metrics: the run report charts the hub's CPU and memory.
    {"name": "with-metrics", "api_token": env["HUBSOAK_TEST_TOKEN"] + "-metrics"},
]
c.JupyterHub.load_roles = [
    {
        "name": "hubsoak",
        "services": ["hubsoak"],
        "scopes": ["admin:users", "servers", "list:users", "read:users", "users:activity",
                   "admin:groups", "access:servers", "tokens"],
    },
    {
        "name": "no-groups",
        "services": ["no-groups"],
        "scopes": ["admin:users", "servers", "list:users", "read:users", "users:activity",
                   "access:servers", "tokens"],
    },
    {
        "name": "with-metrics",
        "services": ["with-metrics"],
        "scopes": ["admin:users", "servers", "list:users", "read:users", "users:activity",
                   "admin:groups", "access:servers", "tokens", "read:metrics"],
    },
    {
        "name": "tests",
        "services": ["tests"],
        "scopes": ["admin:users", "admin:servers", "servers", "list:users", "read:users",
                   "users:activity", "read:metrics", "read:tokens"],
    },
]

if env.get("HUBSOAK_TEST_SPAWNER", "cheap") in ("cheap", "kubelike"):
    # Every user's "server" is one shared fake single-user server on a fixed port (so it
    # is at the same address after the hub restarts); the hub still runs its whole spawn
    # pipeline: token, OAuth client, proxy route, HTTP readiness check, database.
    FAKE_PORT = int(env["HUBSOAK_TEST_FAKE_PORT"])
    SPAWN_DELAY = float(env.get("HUBSOAK_TEST_SPAWN_DELAY", "0"))

    class FakeSingleUser(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"version": "2.21.1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    _fake = ThreadingHTTPServer(("127.0.0.1", FAKE_PORT), FakeSingleUser)
    threading.Thread(target=_fake.serve_forever, daemon=True).start()

    class CheapSpawner(Spawner):
        running = False

        async def start(self):
            if SPAWN_DELAY:
                await asyncio.sleep(SPAWN_DELAY)
            self.running = True
            return "http://127.0.0.1:%d" % FAKE_PORT

        async def poll(self):
            return None if self.running else 0

        async def stop(self, now=False):
            self.running = False

        def get_state(self):
            state = super().get_state()
            state["running"] = self.running
            return state

        def load_state(self, state):
            super().load_state(state)
            self.running = state.get("running", False)

        def clear_state(self):
            super().clear_state()
            self.running = False

    c.JupyterHub.spawner_class = CheapSpawner

    if env.get("HUBSOAK_TEST_SPAWNER") == "kubelike":
        # As zero-to-jupyterhub runs KubeSpawner: every start answers 202 at once and the
        # progress stream tells the rest.
        c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
        IMAGE_PULL = float(env.get("HUBSOAK_TEST_IMAGE_PULL", "0"))

        class KubeLikeSpawner(CheapSpawner):
            """Reports its start as KubeSpawner reports a pod: one progress event per
            Kubernetes event, the event itself as `raw_event`, the message as
            `TIME [TYPE] MESSAGE` (kubespawner/spawner.py, progress())."""

            def _event(self, reason, message):
                now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
                self.pod_events.append({
                    "type": "Normal",
                    "reason": reason,
                    "message": message,
                    "eventTime": now.replace("+00:00", "Z"),
                    "lastTimestamp": None,
                    "metadata": {"uid": uuid.uuid4().hex},
                })

            async def start(self):
                self.pod_events = []
                await asyncio.sleep(0.3)
                self._event("Scheduled", "Successfully assigned hub/jupyter-%s to node-1" % self.user.name)
                image = '"quay.io/jupyter/base-notebook:latest"'
                if IMAGE_PULL:
                    self._event("Pulling", "Pulling image %s" % image)
                    await asyncio.sleep(IMAGE_PULL)
                    self._event("Pulled", "Successfully pulled image %s in %.1fs" % (image, IMAGE_PULL))
                else:
                    self._event("Pulled", "Container image %s already present on machine" % image)
                await asyncio.sleep(0.4)
                self._event("Created", "Created container notebook")
                self._event("Started", "Started container notebook")
                await asyncio.sleep(0.5)
                self.running = True
                return "http://127.0.0.1:%d" % FAKE_PORT

            async def progress(self):
                # Every event from the first, as KubeSpawner replays them; JupyterHub stops
                # reading when the start is done.
                sent, progress = 0, 0
                while True:
                    events = getattr(self, "pod_events", [])
                    for e in events[sent:]:
                        progress += (90 - progress) / 3
                        yield {
                            "progress": int(progress),
                            "raw_event": e,
                            "message": "%s [%s] %s" % (e["lastTimestamp"] or e["eventTime"], e["type"], e["message"]),
                        }
                    sent = len(events)
                    await asyncio.sleep(0.1)

        c.JupyterHub.spawner_class = KubeLikeSpawner
else:
    # Real servers: jupyterhub-singleuser processes.
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(work, "home", "{username}")
    c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
