from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector must exist before any embedding column; later migrations depend on this one."""

    initial = True
    dependencies: list = []
    operations = [VectorExtension()]
