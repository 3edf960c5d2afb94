from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from emban.models import _env_id, _invite_id, _key_id, _member_id, _org_id, _user_id
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Org',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_org_id, unique=True, db_index=True, max_length=32)),
                ('name', fields.CharField(max_length=200)),
                ('email', fields.CharField(null=True, max_length=320)),
                ('plan', fields.CharField(default='free', max_length=20)),
                ('is_demo', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'orgs', 'app': 'emban', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='audit_rows', on_delete=OnDelete.CASCADE)),
                ('actor_type', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(null=True, max_length=64)),
                ('actor_label', fields.CharField(null=True, max_length=320)),
                ('action', fields.CharField(db_index=True, max_length=64)),
                ('resource_type', fields.CharField(max_length=64)),
                ('resource_id', fields.CharField(null=True, max_length=64)),
                ('ip', fields.CharField(null=True, max_length=64)),
                ('metadata', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_log', 'app': 'emban', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Environment',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_env_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='environments', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=64)),
                ('embed_secret', fields.CharField(max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'environments', 'app': 'emban', 'unique_together': (('org', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiKey',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_key_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='api_keys', on_delete=OnDelete.CASCADE)),
                ('environment', fields.ForeignKeyField('emban.Environment', source_field='environment_id', db_constraint=True, to_field='id', related_name='api_keys', on_delete=OnDelete.CASCADE)),
                ('label', fields.CharField(max_length=200)),
                ('scope', fields.CharField(max_length=16)),
                ('prefix', fields.CharField(max_length=16)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('created_by', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_keys', 'app': 'emban', 'pk_attr': 'id', 'table_description': 'An org + environment bound key. The clear key is shown once, only its hash is kept.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Invite',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_invite_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='invites', on_delete=OnDelete.CASCADE)),
                ('email', fields.CharField(max_length=320)),
                ('role', fields.CharField(max_length=16)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('invited_by', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'invites', 'app': 'emban', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_user_id, unique=True, db_index=True, max_length=32)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('name', fields.CharField(max_length=200)),
                ('password_hash', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'emban', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Membership',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_member_id, unique=True, db_index=True, max_length=32)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('emban.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'memberships', 'app': 'emban', 'unique_together': (('org', 'user'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UserSession',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('user', fields.ForeignKeyField('emban.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('org', fields.ForeignKeyField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('environment_id', fields.CharField(max_length=32)),
                ('ip', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'user_sessions', 'app': 'emban', 'pk_attr': 'id', 'table_description': 'A console login. Only the SHA-256 of the cookie value is stored.'},
            bases=['Model'],
        ),
    ]
