"""The audit table is append-only: a PostgreSQL trigger rejects UPDATE and DELETE.
Skipped on SQLite (the embedded `make run` mode), where the hash chain still detects edits."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION compliance_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'compliance_auditentry is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER compliance_audit_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditentry
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS compliance_audit_append_only ON compliance_auditentry;
DROP FUNCTION IF EXISTS compliance_audit_append_only();
"""


class PostgresOnlyRunSQL(migrations.RunSQL):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [PostgresOnlyRunSQL(CREATE, reverse_sql=DROP)]
