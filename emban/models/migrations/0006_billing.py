from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('emban', '0005_alerts_reports_webhooks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BillingAccount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('org', fields.OneToOneField('emban.Org', source_field='org_id', db_constraint=True, to_field='id', related_name='billing_account', on_delete=OnDelete.CASCADE)),
                ('customer_id', fields.CharField(null=True, db_index=True, max_length=64)),
                ('customer_email', fields.CharField(null=True, max_length=320)),
                ('subscription_id', fields.CharField(null=True, db_index=True, max_length=64)),
                ('status', fields.CharField(default='none', max_length=16)),
                ('next_billed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancel_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_event_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'billing_accounts', 'app': 'emban', 'pk_attr': 'id', 'table_description': "An org's Paddle customer and subscription, as the last applied webhook left them."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BillingEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event_id', fields.CharField(unique=True, max_length=64)),
                ('event_type', fields.CharField(max_length=64)),
                ('org_id', fields.CharField(null=True, db_index=True, max_length=32)),
                ('occurred_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharField(max_length=16)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'billing_events', 'app': 'emban', 'pk_attr': 'id', 'table_description': 'One Paddle notification received, kept once per event id.'},
            bases=['Model'],
        ),
    ]
