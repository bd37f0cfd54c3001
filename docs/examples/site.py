# /etc/brucken/site.py: Flask's own settings for this site (named by ARCHIVE_CONFIG in brucken.env).
# ARCHIVE_* environment variables override anything set here; see docs/settings.md.

# The archive is only reached over HTTPS: the session cookie is never sent in clear (and is named __Host-session).
SESSION_COOKIE_SECURE = True

# Answer only for these host names (a request for any other gets 400). List every name that people, a load
# balancer's health check and Prometheus use to reach the archive.
TRUSTED_HOSTS = ["archiv.example.org"]
