"""nginx in front of several Koe processes: the configuration the README's deployment uses,
printed by `manage.py nginx_config` and used by the scale-out test and benchmark."""

from __future__ import annotations


def nginx_site(*, listen: str, upstreams: list[str], server_name: str = "_") -> str:
    """The http-level part of nginx's configuration: WebSocket upgrades passed through, hour-long
    sockets, round robin over `upstreams` (no sticky sessions needed: sessions live in the
    database, limits and the channel layer in Redis)."""
    servers = "\n".join(f"        server {address};" for address in upstreams)
    return f"""
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream koe {{
{servers}
    }}
    server {{
        listen {listen};
        server_name {server_name};
        location / {{
            proxy_pass http://koe;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            # Voice sockets live as long as a conversation; uploads up to KOE_MAX_UPLOAD_MB.
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            client_max_body_size 60m;
        }}
    }}"""


STANDALONE = """
worker_processes 1;
daemon off;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""


def nginx_standalone_config(*, prefix: str, listen: str, upstreams: list[str]) -> str:
    """A whole nginx.conf that keeps everything under `prefix` (tests and benchmarks run their
    own nginx next to the system's)."""
    return STANDALONE.format(prefix=prefix, site=nginx_site(listen=listen, upstreams=upstreams))
