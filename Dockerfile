# Production image: one image, three roles (web, worker, beat) chosen by the compose command.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY . .
# Editable install keeps BASE_DIR at /app, where templates/ and manage.py live.
RUN pip install --no-cache-dir -c constraints.txt -e . \
 && python tools/frontend.py \
 && DJANGO_SETTINGS_MODULE=config.settings python manage.py collectstatic --noinput \
 && useradd --create-home app && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
