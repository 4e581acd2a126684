"""Paste filter for the lab's nova-api (noauth2): copies X-Auth-Token into the
request context. noauth2 leaves context.auth_token empty, and Nova's Glance
client then refuses (POST /servers -> 500 AuthorizationFailure). No Nova code
is changed; the filter sits after noauth2 in the lab's own api-paste.ini."""


class _CopyToken:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        ctx = environ.get("nova.context")
        if ctx is not None and not ctx.auth_token:
            ctx.auth_token = environ.get("HTTP_X_AUTH_TOKEN")
        return self.app(environ, start_response)


def filter_factory(global_conf, **local_conf):
    return _CopyToken
