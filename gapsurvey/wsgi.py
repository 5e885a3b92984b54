"""
The WSGI application that gunicorn serves (``gapsurvey.wsgi:application``).

Loading it also imports every view (so the first request doesn't pay for
pandas, SciPy and Plotly) and then freezes the objects that importing made:
they live as long as the process, and without the freeze every full garbage
collection walks them all again, which adds about 100 ms to an unlucky request.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gapsurvey.settings")

application = get_wsgi_application()


def load_views_and_freeze() -> None:
    """Import the URL conf and every view it names, collect once, and keep what's left out of later collections."""
    get_resolver().url_patterns  # noqa: B018 -- the import is the point
    gc.collect()
    gc.freeze()


load_views_and_freeze()
