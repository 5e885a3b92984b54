"""
Response headers Django's SecurityMiddleware doesn't set: a Content Security
Policy that allows only this site's own files, and a Permissions Policy that
turns off browser features no page uses.

Every script and stylesheet is served from ``static/`` (no inline scripts, no
style attributes or <style> in templates; Plotly's stylesheet is a file too,
templates/analysis/_plotly_head.html). Only style *attributes* set at run time
are allowed inline: Plotly draws with them. Images
may be data:/blob: URLs: Plotly's "download as PNG" draws one. A view that must
differ (the email preview, whose HTML carries inline styles as emails do) sets
its own header, which is left alone.
"""

from django.conf import settings

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Plotly positions and colours its SVG through style attributes; an attribute styles
        # one element and can't read the page (stylesheets and <style> stay 'self' only).
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", CONTENT_SECURITY_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
