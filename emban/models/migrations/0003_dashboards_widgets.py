from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from emban.models import _dashboard_id, _widget_id
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('emban', '0002_saved_queries_usage')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Dashboard',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_dashboard_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='dashboards', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('description', fields.TextField(default='', unique=False)),
                ('draft', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('published', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('is_published', fields.BooleanField(default=False, db_index=True)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('is_demo', fields.BooleanField(default=False)),
                ('created_by', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'dashboards', 'app': 'emban', 'pk_attr': 'id', 'table_description': 'A dashboard: the editable draft and the published snapshot that embeds show.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Widget',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_widget_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='widgets', on_delete=OnDelete.CASCADE)),
                ('draft', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('published', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'widgets', 'app': 'emban', 'pk_attr': 'id', 'table_description': 'A standalone widget (outside any dashboard), with a draft and a published snapshot.'},
            bases=['Model'],
        ),
    ]
