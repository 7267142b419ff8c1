"""python3 -m pyhttpd run | stop | configtest FILE  (run from test/, or with test/ on
PYTHONPATH): the demo httpd of `make run` / `make stop`; configtest: apache2 -t of a
config body in the harness's httpd.conf."""
import sys

from .httpd import main

sys.exit(main(sys.argv))
