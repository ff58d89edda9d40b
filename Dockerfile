# Production image: one image, three roles (web, worker, beat) chosen by the compose command.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY engagement ./engagement
COPY customers ./customers
COPY channels_inbound ./channels_inbound
COPY channels_outbound ./channels_outbound
RUN pip install --no-cache-dir -c constraints.txt .
COPY manage.py ./
COPY templates ./templates
RUN DJANGO_SETTINGS_MODULE=engagement.settings python manage.py collectstatic --noinput
RUN useradd --create-home app
USER app
EXPOSE 8000
CMD ["uvicorn", "engagement.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
