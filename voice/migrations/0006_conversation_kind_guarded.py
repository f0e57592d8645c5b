from django.db import migrations

# A conversation's kind (assistant or minutes) is part of what it is: like its user and start,
# the one update Koe makes (its end) may not change it. Same guard as 0004, with `kind`.
CONVERSATION_GUARD = """
CREATE OR REPLACE FUNCTION koe_conversation_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('koe.retention_purge', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit records are append-only: DELETE on % refused', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
       AND NEW.id = OLD.id AND NEW.public_id = OLD.public_id AND NEW.user_id = OLD.user_id
       AND NEW.provider = OLD.provider AND NEW.model = OLD.model
       AND NEW.started_at = OLD.started_at AND NEW.kind = OLD.kind THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit records are append-only: a conversation only gets its end, once'
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("voice", "0005_conversation_kind")]

    operations = [migrations.RunSQL(CONVERSATION_GUARD, migrations.RunSQL.noop)]
