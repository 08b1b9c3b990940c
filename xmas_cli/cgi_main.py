"""The web routes as a CGI script, for any web server that runs one (`xmas-cgi`, or `python -m xmas_cli.cgi_main`).

The server passes the request in the environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
CONTENT_LENGTH, HTTP_*) and the body on stdin; the answer goes to stdout with a `Status:` header. Configure
it like the CLI: XMAS_CONFIG (or campaign.toml in the working directory), XMAS_SECRET, and the keys the routes
need (XMAS_WEBHOOK_KEY..., XMAS_API_TOKEN, RESEND_WEBHOOK_SECRET). Errors go to stderr, the server's error log.
"""

from __future__ import annotations

from wsgiref.handlers import CGIHandler

from .web import make_app


def main() -> None:
    CGIHandler().run(make_app())


if __name__ == "__main__":
    main()
