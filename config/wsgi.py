import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from config.http import chunked_body_application  # noqa: E402  (after the settings module is chosen)

application = chunked_body_application(get_wsgi_application())
