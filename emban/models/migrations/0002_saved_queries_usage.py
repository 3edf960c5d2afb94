from tortoise import migrations
from tortoise.migrations import operations as ops
from emban.models import _saved_query_id
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('emban', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SavedQuery',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_saved_query_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='saved_queries', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('sql', fields.TextField(unique=False)),
                ('dataset', fields.CharField(default='events', max_length=64)),
                ('starred', fields.BooleanField(default=False)),
                ('created_by', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'saved_queries', 'app': 'emban', 'pk_attr': 'id', 'table_description': "A saved ad-hoc SQL snippet of the org (the Query Builder's list)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UsageDaily',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='usage_days', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('events', fields.BigIntField(default=0)),
                ('queries', fields.BigIntField(default=0)),
            ],
            options={'table': 'usage_daily', 'app': 'emban', 'unique_together': (('org', 'day'),), 'pk_attr': 'id', 'table_description': 'Per org and UTC day: events accepted through ingest and analytics queries run.'},
            bases=['Model'],
        ),
    ]
