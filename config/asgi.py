import os

from django.core.asgi import get_asgi_application

from config import embedded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()
embedded.start()  # the data folder's PostgreSQL and Redis, unless DATABASE_URL / REDIS_URL name others
