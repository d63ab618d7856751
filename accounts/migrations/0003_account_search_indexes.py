"""Search indexes for the dashboard's account search: pg_trgm for substrings, pattern-ops b-trees for prefixes."""

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import TrigramExtension
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_account_customer_email'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrigramExtension(),
        migrations.AddIndex(
            model_name='account',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('name'), name='gin_trgm_ops'), name='accounts_acct_name_trgm'),
        ),
        migrations.AddIndex(
            model_name='account',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('domain'), name='gin_trgm_ops'), name='accounts_acct_domain_trgm'),
        ),
        migrations.AddIndex(
            model_name='account',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('external_id'), name='gin_trgm_ops'), name='accounts_acct_extid_trgm'),
        ),
        migrations.AddIndex(
            model_name='account',
            index=models.Index(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('name'), name='text_pattern_ops'), name='accounts_acct_name_prefix'),
        ),
        migrations.AddIndex(
            model_name='account',
            index=models.Index(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('domain'), name='text_pattern_ops'), name='accounts_acct_domain_prefix'),
        ),
        migrations.AddIndex(
            model_name='account',
            index=models.Index(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('external_id'), name='text_pattern_ops'), name='accounts_acct_extid_prefix'),
        ),
    ]
