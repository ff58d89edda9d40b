"""API key authentication: ``Authorization: Bearer <key>``."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from engagement.models import ApiKey
from engagement.services.tenancy import KEY_PREFIX, api_key_authenticate

from .ratelimit import auth_failure_record


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if scheme != self.keyword or not secret.startswith(KEY_PREFIX):
            return None
        key = api_key_authenticate(secret=secret.strip())
        if key is None:
            auth_failure_record(request=request._request)
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "engagement.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A workspace API key: eng_…"}
