"""With REDIS_URL, processes share one channel layer and one cache (several workers)."""

import os
import subprocess
import sys

from channels_redis.core import RedisChannelLayer
from django.core.cache.backends.redis import RedisCache


async def test_two_layers_on_one_redis_reach_each_other(redis_url):
    # Two layer instances stand for two worker processes behind a load balancer.
    worker_a = RedisChannelLayer(hosts=[redis_url])
    worker_b = RedisChannelLayer(hosts=[redis_url])
    channel = await worker_b.new_channel()
    await worker_a.group_add("conversation.42", channel)
    await worker_a.group_send("conversation.42", {"type": "voice.notice", "text": "reconnected"})
    message = await worker_b.receive(channel)
    assert message == {"type": "voice.notice", "text": "reconnected"}
    await worker_a.flush()
    await worker_a.close_pools()
    await worker_b.close_pools()


def test_cache_is_shared_between_clients(redis_url):
    one = RedisCache(redis_url, {"KEY_PREFIX": "koe"})
    two = RedisCache(redis_url, {"KEY_PREFIX": "koe"})
    one.set("limit:user:7", 3, timeout=30)
    assert two.get("limit:user:7") == 3
    assert two.incr("limit:user:7") == 4
    other_prefix = RedisCache(redis_url, {"KEY_PREFIX": "other"})
    assert other_prefix.get("limit:user:7") is None


def test_settings_use_redis_when_redis_url_is_set(redis_url):
    code = (
        "import django; django.setup();"
        "from django.core.cache import cache; from channels.layers import get_channel_layer;"
        "cache.set('probe', 'shared'); print(type(get_channel_layer()).__name__)"
    )
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "RedisChannelLayer"
    assert RedisCache(redis_url, {"KEY_PREFIX": "koe"}).get("probe") == "shared"
