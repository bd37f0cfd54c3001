"""Brücken, the shared photo archive of Fotoprojekt Brücken. ``create_app`` builds the Flask app;
nothing happens at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    from . import auth, cli, errors_web, i18n, security
    from .models import db
    from .settings import ensure_folders, load_settings, secret_key
    from .upload_stream import StagingRequest
    from .views import register_blueprints

    settings = load_settings(overrides)
    app = Flask(__name__, template_folder=str(ROOT / "templates"), instance_path=settings["INSTANCE_DIR"])
    app.request_class = StagingRequest
    app.config.update(settings)
    ensure_folders(settings)
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SQLALCHEMY_DATABASE_URI=settings["DATABASE_URL"],
        MAX_CONTENT_LENGTH=settings["MAX_REQUEST_BYTES"],
    )
    if settings["DATABASE_URL"].startswith("postgresql") and "SQLALCHEMY_ENGINE_OPTIONS" not in settings:
        # A request never waits without end for a lock: past the limit it gets a 503 and can simply be retried.
        lock_timeout = int(settings["POSTGRES_LOCK_TIMEOUT_MS"])
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-c lock_timeout={lock_timeout}"}}
    # Our defaults for Flask's own settings; a site file (ARCHIVE_CONFIG) may set them otherwise.
    for name, value in {
        # A limit for the non-file form fields; files go to the staging folder (see archive.upload_stream).
        "MAX_FORM_MEMORY_SIZE": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Volunteers upload on slow connections and leave forms open: the token lasts as long as the session.
        "WTF_CSRF_TIME_LIMIT": None,
    }.items():
        if name not in settings:
            app.config[name] = value

    if int(settings.get("TRUSTED_PROXIES") or 0) > 0:
        # Behind nginx or a load balancer: the visitor's address (login limit), scheme and host (links, HSTS)
        # come from the X-Forwarded-* headers the trusted proxies add, and from nowhere else.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(settings["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    db.init_app(app)
    _tune_sqlite(app)
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    i18n.init_app(app)
    auth.init_app(app)
    errors_web.init_app(app)
    security.init_app(app, settings)
    register_blueprints(app)
    cli.register(app)
    return app


def _tune_sqlite(app: Flask) -> None:
    """The web processes and the worker share one SQLite file: WAL lets readers run beside the writer,
    and a busy timeout makes writers wait instead of failing with 'database is locked'."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    from .models import db

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(app.config['SQLITE_BUSY_TIMEOUT_MS'])}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
