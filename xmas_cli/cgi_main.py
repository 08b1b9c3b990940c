"""`python -m xmas_cli.cgi_main`, the path websites already call: the CGI entry point, kept where it was.

The code lives in web/cgi.py (and `xmas-cgi` runs it).
"""

from .web.cgi import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
