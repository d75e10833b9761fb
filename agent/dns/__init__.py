"""The embedded DNS: what each container on a user network asks at 127.0.0.11.

`names.py` turns the view into name records; `resolver.py` answers a query
from them for one asking container (forwarding the rest to the host's
resolvers); `listeners.py` serves each container's namespace; `etc_files.py`
writes the container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
"""
