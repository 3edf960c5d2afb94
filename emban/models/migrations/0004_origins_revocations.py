from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from emban.models import _any_origin
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('emban', '0003_dashboards_widgets')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EmbedRevocation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='embed_revocations', on_delete=OnDelete.CASCADE)),
                ('environment_id', fields.CharField(db_index=True, max_length=32)),
                ('session_id', fields.CharField(null=True, max_length=32)),
                ('dashboard_id', fields.CharField(null=True, max_length=32)),
                ('tenant_id', fields.CharField(null=True, max_length=256)),
                ('issued_before', fields.BigIntField()),
                ('expires_at', fields.BigIntField()),
                ('created_by', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'embed_revocations', 'app': 'emban', 'pk_attr': 'id', 'table_description': 'A revoked embed session, or a revocation of many sessions of one environment.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Environment',
            name='allowed_origins',
            field=fields.JSONField(default=_any_origin, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
