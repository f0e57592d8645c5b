from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.models import Document
from knowledge.parsing import FORMATS, DocumentError
from knowledge.services import DuplicateDocument, document_create, document_ingest


class Command(BaseCommand):
    help = "Add files (or every supported file under folders) to the knowledge base."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="files or folders")
        parser.add_argument(
            "--groups",
            default="",
            help="comma-separated groups allowed to read them (default: all employees)",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the knowledge base has documents (for a demo set at start)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Document.objects.exists():
            self.stdout.write("the knowledge base has documents: nothing added")
            return
        names = [n.strip() for n in options["groups"].split(",") if n.strip()]
        groups = list(Group.objects.filter(name__in=names))
        missing = set(names) - {g.name for g in groups}
        if missing:
            raise CommandError(f"unknown groups: {', '.join(sorted(missing))}")
        files = sorted(_files(options["paths"]))
        if not files:
            raise CommandError("no supported files found")
        counts = {"ready": 0, "failed": 0, "skipped": 0}
        for path in files:
            try:
                document = document_create(
                    uploaded_by=None,
                    filename=path.name,
                    data=path.read_bytes(),
                    groups=groups,
                    enqueue=False,
                )
            except DuplicateDocument as exc:
                self.stdout.write(f"skipped  {path}: {exc}")
                counts["skipped"] += 1
                continue
            except DocumentError as exc:
                self.stdout.write(f"failed   {path}: {exc}")
                counts["failed"] += 1
                continue
            # Index here and now: bulk work should not wait for (or need) the worker.
            document = document_ingest(document_id=document.pk)
            line = f"{document.status:<8} {path}: {document.chunks.count()} passages"
            self.stdout.write(line + (f" ({document.error})" if document.error else ""))
            counts["ready" if document.status == "ready" else "failed"] += 1
        ready, failed, skipped = counts["ready"], counts["failed"], counts["skipped"]
        self.stdout.write(f"{ready} indexed, {failed} failed, {skipped} already there")


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS]
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{raw}: no such file or folder")
    return found
