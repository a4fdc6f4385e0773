from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("streaming", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="consumerheartbeat",
            name="partitions",
            field=models.IntegerField(default=0, help_text="partitions assigned at the last beat"),
        ),
    ]
