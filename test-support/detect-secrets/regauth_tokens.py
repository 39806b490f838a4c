"""detect-secrets plugin for regauth tokens (format v2: prefix, 32 base62, 6 base62 CRC32).

Use: detect-secrets scan --plugin regauth_tokens.py <paths>. With an instance prefix
(`token_instance_prefix = "acme-"`), change `gldt-` to `acme-dt-`, and so on.
"""
import re

from detect_secrets.plugins.base import RegexBasedDetector


class RegauthTokenDetector(RegexBasedDetector):
    """regauth deploy tokens, personal access tokens, refresh tokens and exchanged credentials."""

    secret_type = "regauth token"

    denylist = [
        re.compile(r"(?:gldt-|glpat-|regauth-rt-|regauth-wl-)[0-9A-Za-z]{38}"),
    ]
