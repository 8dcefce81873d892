"""Logging in through the collaboration's INDIGO-IAM style OpenID Connect provider.

Named in config `server.auth.backends` as `astroportal.auth.iam.IAMOpenIdConnect`; configured under
`server.auth.iam` (social-core settings in lower case, see the distribution's config.defaults.yaml):

    oidc_endpoint   the provider's issuer URL (its discovery document is <issuer>/.well-known/openid-configuration)
    discovery_url   optional: the full URL of the discovery document, when it is not under the issuer
    key, secret     the client id and secret registered at the provider (the secret: config.yaml or env only)
    scope           "openid email profile"
    groups_key      the claim that lists the person's groups (IAM: `groups`), read by the pipeline step
                    astroportal.auth.group_mapping.sync_mapped_groups

The redirect URI to register at the provider is <server.url>/complete/iam.
"""

from __future__ import annotations

from typing import Any

from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_core.exceptions import AuthConfigurationError

DISCOVERY_PATH = "/.well-known/openid-configuration"


class IAMOpenIdConnect(OpenIdConnectAuth):
    """OpenID Connect with endpoints, issuer and signing keys taken from the provider's discovery document."""

    name = "iam"
    title = "INDIGO IAM"
    DEFAULT_SCOPE = ["openid", "email", "profile"]
    # IAM supports PKCE; the code then cannot be redeemed by someone who only intercepted it.
    DEFAULT_USE_PKCE = True

    def oidc_endpoint(self) -> str:
        """The issuer URL without its trailing slash (IAM's issuer ends with one)."""
        endpoint = self.setting("OIDC_ENDPOINT", self.OIDC_ENDPOINT)
        if not endpoint:
            raise AuthConfigurationError(
                self,
                "server.auth.iam.oidc_endpoint (the provider's issuer URL) is not set",
                code="missing_setting",
                parameter="OIDC_ENDPOINT",
                stage="begin",
            )
        if not isinstance(endpoint, str):
            raise AuthConfigurationError(self, code="invalid_setting", parameter="OIDC_ENDPOINT", stage="begin")
        return endpoint.rstrip("/")

    def oidc_config_url(self) -> str:
        discovery = self.setting("DISCOVERY_URL")
        if discovery:
            if not isinstance(discovery, str):
                raise AuthConfigurationError(self, code="invalid_setting", parameter="DISCOVERY_URL", stage="begin")
            return discovery
        return self.oidc_endpoint() + DISCOVERY_PATH

    def get_scope(self) -> list[str]:
        """The configured scopes and the defaults, each once (social-core would repeat shared ones)."""
        return list(dict.fromkeys(super().get_scope()))

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        details = super().get_user_details(response)
        # Without an email the username falls back to IAM's preferred_username, then the subject.
        if not details.get("username"):
            details["username"] = response.get("sub") or (self.id_token or {}).get("sub")
        return details
