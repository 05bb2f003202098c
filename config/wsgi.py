import os

from django.core.wsgi import get_wsgi_application

from config import embedded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
embedded.start()  # the data folder's PostgreSQL and Redis, unless DATABASE_URL / REDIS_URL name others
