"""masakari-api for the lab: Debian 12's masakari 14.0.2 with one fix (wsgi.py masakari_lab:app).

Since Debian's python3-oslo.messaging 14.0.3-0+deb12u1, a notification's context is cut down
to a safe subset of keys and rebuilt with RequestContext.from_dict; masakari's from_dict then
passes read_deleted=None, which masakari's RequestContext refuses (ValueError "read_deleted can
only be one of 'no', 'yes' or 'only', not None"). Every API call that notifies - creating,
updating or deleting a segment or a host, so also umm's on_maintenance PUT - answers HTTP 500
and changes nothing (the "start" notification comes before the write). The lab lets a missing
read_deleted mean masakari's own default, "no"; nothing else is changed.
"""
from masakari import context
from masakari.cmd import api

_from_dict = context.RequestContext.from_dict.__func__


def _from_dict_default_read_deleted(cls, values, **kwargs):
    if values.get("read_deleted") is None and kwargs.get("read_deleted") is None:
        kwargs["read_deleted"] = "no"
    return _from_dict(cls, values, **kwargs)


context.RequestContext.from_dict = classmethod(_from_dict_default_read_deleted)


def app():
    return api.initialize_application()
