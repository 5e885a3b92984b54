"""The production path: docker-compose.yml, the Dockerfile and the settings with DEBUG off.

The test run itself loads the settings with DEBUG=1 (see tests/environment.py),
so the production branch is exercised here in subprocesses with a clean
production-like environment. CI also validates docker-compose.yml against the
Compose schema (.ci/run); these tests check what the schema cannot: that the
stack has the services the app needs and runs the right commands.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def _production_env(**overrides: str) -> dict[str, str]:
    # Start from nothing project-specific, so neither the test run's defaults
    # nor a developer's exported overrides leak into the check.
    env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
    env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="example.com")
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class ComposeFileTests:
    def test_stack_has_database_broker_web_worker_and_beat(self):
        services = _compose()["services"]

        assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
        assert services["postgres"]["image"].startswith("postgres:16")
        assert "healthcheck" in services["postgres"]
        assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["postgres"]["volumes"])

    def test_app_services_run_gunicorn_celery_worker_beat_and_migrations(self):
        services = _compose()["services"]

        assert _command(services["web"]).startswith("gunicorn gapsurvey.wsgi")
        assert _command(services["worker"]).startswith("celery -A gapsurvey worker")
        assert _command(services["beat"]).startswith("celery -A gapsurvey beat")
        assert _command(services["migrate"]) == "python manage.py migrate --noinput"
        for name in ("web", "worker", "beat"):
            assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"

    def test_app_services_are_configured_by_required_secret_and_service_urls(self):
        services = _compose()["services"]

        for name in APP_SERVICES:
            environment = services[name]["environment"]
            assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), name
            assert environment["DEBUG"] == "0", name
            assert "DATABASE_URL" in environment and "REDIS_URL" in environment, name

    def test_app_services_pass_exactly_the_variables_the_settings_read(self):
        settings_source = (REPO_ROOT / "gapsurvey" / "settings.py").read_text()
        read_by_settings = set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', settings_source))
        # Read by libpq and gunicorn themselves, not by the settings.
        read_by_tools = {"PGPASSWORD", "WEB_CONCURRENCY"}
        passed = set(_compose()["services"]["web"]["environment"])

        assert read_by_settings - passed == set(), "settings read these, docker-compose.yml does not pass them"
        assert passed - read_by_settings - read_by_tools == set(), "passed, but nothing reads them"


class GunicornConfigTests:
    """gunicorn.conf.py, read by the web container's plain `gunicorn gapsurvey.wsgi:application`."""

    def test_defaults_to_two_sync_workers_per_available_core_plus_one(self):
        config = _gunicorn_config()

        assert config["workers"] == str(2 * len(os.sched_getaffinity(0)) + 1)
        assert config["worker_class"] == "sync"
        assert config["bind"] == "['0.0.0.0:8000']"
        assert config["accesslog"] == "-"

    def test_web_concurrency_and_port_override_the_defaults(self):
        config = _gunicorn_config(WEB_CONCURRENCY="3", PORT="9000")

        assert config["workers"] == "3"
        assert config["bind"] == "['0.0.0.0:9000']"

    def test_compose_and_image_leave_workers_and_port_to_the_config(self):
        web_command = _command(_compose()["services"]["web"])
        dockerfile = (REPO_ROOT / "Dockerfile").read_text()

        assert web_command == "gunicorn gapsurvey.wsgi:application"
        assert 'CMD ["gunicorn", "gapsurvey.wsgi:application"]' in dockerfile


def _gunicorn_config(**env: str) -> dict[str, str]:
    """The settings gunicorn resolves in the repository folder (as in the image's /app) with ``env``."""
    inherited = {name: value for name, value in os.environ.items() if name not in {"WEB_CONCURRENCY", "PORT"}}
    completed = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "gapsurvey.wsgi:application"],
        cwd=REPO_ROOT,
        env={**inherited, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in completed.stdout.splitlines())
        if value
    )


class DockerfileTests:
    def test_image_collects_static_files_and_runs_as_non_root(self):
        dockerfile = (REPO_ROOT / "Dockerfile").read_text()

        assert "FROM python:3.11-slim" in dockerfile
        assert "pip install -r requirements.txt" in dockerfile
        assert "collectstatic --noinput" in dockerfile
        assert "\nUSER gapsurvey\n" in dockerfile
        assert "gunicorn" in dockerfile

    def test_build_context_leaves_out_secrets_and_local_state(self):
        ignored = (REPO_ROOT / ".dockerignore").read_text().split()

        for entry in (".git", ".venv", ".env", "var", "staticfiles"):
            assert entry in ignored


@pytest.fixture(scope="class")
def production_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The production settings, with static files collected as the image build does.

    With DEBUG off, static URLs come from the collected manifest, so anything
    that resolves one (templates, URL patterns) needs collectstatic first. The
    settings fix STATIC_ROOT inside the repository; a wrapper settings module
    points it at a temporary folder instead and changes nothing else.
    """
    folder = tmp_path_factory.mktemp("production")
    (folder / "production_settings.py").write_text(
        f"from gapsurvey.settings import *  # noqa: F403\nSTATIC_ROOT = {str(folder / 'static')!r}\n"
    )
    env = _production_env(
        DJANGO_SETTINGS_MODULE="production_settings",
        PYTHONPATH=os.pathsep.join([str(folder), str(REPO_ROOT)]),
    )
    collected = _manage("collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    return env


def _wsgi_get(env: dict[str, str], path: str, *, before: str = "") -> dict:
    """GET ``path`` from the production WSGI app in a fresh process, as an HTTPS request from the proxy."""
    probe = (
        "import io, json, sys\n"
        "from gapsurvey.wsgi import application\n"
        + before
        + "captured = {}\n"
        f"environ = {{'REQUEST_METHOD': 'GET', 'PATH_INFO': {path!r}, 'SERVER_NAME': 'example.com',\n"
        "           'SERVER_PORT': '443', 'HTTP_HOST': 'example.com', 'wsgi.url_scheme': 'https',\n"
        "           'wsgi.input': io.BytesIO(), 'wsgi.errors': sys.stderr}\n"
        "def start(status, headers): captured.update(status=status, headers=dict(headers))\n"
        "captured['body'] = b''.join(application(environ, start)).decode()\n"
        "print(json.dumps(captured))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


class ProductionSettingsTests:
    def test_static_files_collect_into_the_hashed_manifest(self, production_env):
        static_root = Path(production_env["PYTHONPATH"].split(os.pathsep)[0]) / "static"

        assert (static_root / "staticfiles.json").is_file()

    def test_deploy_checks_pass_without_a_single_warning(self, production_env):
        result = _manage("check", "--deploy", "--fail-level", "WARNING", env=production_env)

        assert result.returncode == 0, result.stdout + result.stderr
        assert "no issues" in result.stdout

    @pytest.mark.parametrize("secret_key", ["", None])
    def test_missing_secret_key_with_debug_off_fails_loudly(self, secret_key):
        env = _production_env()
        if secret_key is None:
            del env["SECRET_KEY"]
        else:
            env["SECRET_KEY"] = secret_key

        result = _manage("check", env=env)

        assert result.returncode != 0
        assert "SECRET_KEY must be set" in result.stderr

    def test_wsgi_application_loads_every_view_up_front_and_serves(self, production_env):
        # What gunicorn imports: the views (and pandas, Plotly under them) load before the first
        # request, and what loading made is frozen out of the garbage collector's full passes.
        captured = _wsgi_get(
            production_env,
            "/healthz",
            before=(
                "import gc\n"
                "assert 'analysis.views' in sys.modules and 'surveys.views.customers' in sys.modules\n"
                "assert gc.get_freeze_count() > 10000, gc.get_freeze_count()\n"
            ),
        )

        assert (captured["status"], captured["body"]) == ("200 OK", "ok")

    def test_production_responses_carry_the_security_headers(self, production_env):
        captured = _wsgi_get(production_env, "/accounts/login/")
        headers = captured["headers"]

        assert captured["status"] == "200 OK"
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        policy = dict(directive.strip().split(" ", 1) for directive in headers["Content-Security-Policy"].split(";"))
        assert policy["default-src"] == "'self'"
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'"
