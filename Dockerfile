# GapSurvey application image: web (gunicorn), Celery worker and beat all run
# from it; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Static files are collected (hashed and compressed for WhiteNoise) into the
# image. The settings refuse to load without SECRET_KEY when DEBUG is off; this
# value exists only in this build step and is never used at run time.
RUN DEBUG=0 SECRET_KEY=build-time-only-collectstatic python manage.py collectstatic --noinput \
    && useradd --system --user-group --uid 10001 --home-dir /app --no-create-home gapsurvey \
    && mkdir -p var \
    && chown gapsurvey:gapsurvey var

# The code stays owned by root: the app user can write only var/.
USER gapsurvey

EXPOSE 8000
# Workers, port and timeouts: gunicorn.conf.py.
CMD ["gunicorn", "gapsurvey.wsgi:application"]
